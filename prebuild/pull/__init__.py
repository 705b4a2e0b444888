"""The runner hook: pull by key, or fall back to a build from the cache."""
