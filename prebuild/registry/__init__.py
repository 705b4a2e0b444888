"""The OCI registry: reference grammar, a small client, auth, retention."""
