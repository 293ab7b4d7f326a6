"""The local control plane that the integration and end-to-end tests (and `make demo`) run on."""
