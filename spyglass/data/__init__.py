"""Image data: upload and download, ingest, byte ranges, imports, copies between stores,
web-download, and crash recovery."""
