"""Files of your own events: CSV, Parquet and NDJSON, one file, a folder or a glob."""
