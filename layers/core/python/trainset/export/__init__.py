"""Training files: TFRecords, WordPiece tokens and author features (pure)."""
