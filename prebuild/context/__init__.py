"""Build context: which files a Dockerfile's sources can match, minus .dockerignore."""
