"""Build what the plan says is missing, and report it."""
