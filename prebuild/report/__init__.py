"""What a build run tells its readers: results, why each image rebuilt, history, metrics, HTML."""
