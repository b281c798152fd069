"""Models of the payments app arrive with its issue; the app is installed so migrations and imports settle now."""
