"""Configuration: find, parse and validate prebuild.toml into a Project."""
