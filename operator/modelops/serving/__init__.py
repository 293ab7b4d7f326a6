"""The model server that runs in serving pods."""
