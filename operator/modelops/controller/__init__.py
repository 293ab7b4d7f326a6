"""kopf handlers: the thin I/O layer that reads the cluster, calls the pure core and writes results."""
