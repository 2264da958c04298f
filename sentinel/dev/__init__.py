"""Development helpers: throwaway clusters and Redis servers, and `make run`'s supervisor."""
