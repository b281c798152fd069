"""Models of the catalog app arrive with its issue; the app is installed so migrations and imports settle now."""
