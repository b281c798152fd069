"""Models of the recommender app arrive with its issue; the app is installed so migrations and imports settle now."""
