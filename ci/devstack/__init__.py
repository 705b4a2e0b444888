"""The local stack: a private Docker Engine, CNCF distribution registries and a moto S3 server.

Stdlib only, so `ci/stack` runs before any virtualenv exists.
"""
