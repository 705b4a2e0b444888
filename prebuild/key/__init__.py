"""The content key: what shapes an image, hashed."""
