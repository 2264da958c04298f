"""What every Sentinel serves whatever its plugins: /discover, /status,
/notifications, the API description, and the web UI's home page."""
