"""BuildKit cache on S3: the shared format, layout conversion, sync and gc."""
