"""The Taskcast web tier: the showcase's consumers, pages and HTTP endpoints."""
