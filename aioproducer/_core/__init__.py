"""Layer 3-6, sans-IO: partitioners, accumulator, memory pool, cluster metadata, idempotence."""
