"""Layer 2, sans-IO: RecordBatch v2 (magic 2) builder and reader, CRC-32C, codecs."""
