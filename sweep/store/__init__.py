"""Where a sweep's results live: run directories, table schemas, leases and the W&B mirror."""
