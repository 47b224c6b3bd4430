"""REST transport: converts HTTP to calls on the core and back, nothing more."""
