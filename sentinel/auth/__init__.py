"""Who may use Sentinel: users and their passwords, sessions and API tokens,
login throttling, the API's sign-in routes and the web UI's sign-in pages."""
