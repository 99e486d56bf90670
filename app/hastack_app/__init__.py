"""hastack reference app: see docs/app.md."""
