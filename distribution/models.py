"""Models of the distribution app arrive with its issue; the app is installed so migrations and imports settle now."""
