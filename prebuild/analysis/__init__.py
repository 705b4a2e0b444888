"""Dockerfile analysis: stages, FROM refs, COPY/ADD sources, ARG/ENV expansion."""
