"""The thin I/O layer: informers fill an in-memory cache, workers reconcile keys from a queue by
calling the pure core, write status first and then act. The only package that talks to the API server."""
