"""prebuild: prebuild CI container images once, keyed by their content."""

__version__ = "0.1.0"
