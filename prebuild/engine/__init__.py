"""The build engine: every docker/buildx call, platforms, progress parsing."""
