"""gc: registry retention per image and S3 cache garbage collection per bucket, as one run."""
