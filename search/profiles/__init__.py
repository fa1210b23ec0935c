"""Built-in profiles: the standard-library corpus's index and its settings."""
