"""BuildKit cache storage prebuild manages itself: S3 sync, layout conversion, gc."""
