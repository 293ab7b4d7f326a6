"""modelops: a Kubernetes operator that deploys scikit-learn models and canaries new versions."""

__version__ = "0.1.0"
