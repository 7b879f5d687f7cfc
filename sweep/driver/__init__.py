"""How a sweep runs on Ray: the driver loop, workers, the cluster, progress and the dry run."""
