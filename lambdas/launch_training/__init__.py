"""The launcher Lambda: S3 trigger objects and console/CLI requests -> one training job."""
