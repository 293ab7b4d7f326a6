"""Canary analysis: metric providers (Prometheus, direct scrape) and pure judging of their readings."""
