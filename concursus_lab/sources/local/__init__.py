"""The embedded local store: Parquet files and their manifest."""
