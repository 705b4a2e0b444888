"""The env-file importer: bash env files read statically, never executed."""
