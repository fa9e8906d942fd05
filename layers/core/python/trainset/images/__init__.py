"""Image augmentation, face clipping and image keys (pure: no boto3, no SQL)."""
