"""Model artifacts: where they live, what a model directory holds, and the one store that moves them.

Layout: ``uri`` (parsing file://, pvc://, s3:// and http(s):// URIs; pure), ``errors`` (``ArtifactError``,
the one error of this package), ``digest`` (sha256 of files and folders), ``model_dir`` (the model
directory format the trainer writes and the fetch step and the server read), ``log_layout`` (where the
request log's Parquet files go), ``store`` (read, write and list any of those URIs, with size and time
caps) and ``fetch`` (the serving pod's init step: a verified model directory from a URI).

Shared by the server (modelops.serving), the trainer and the retraining Job (modelops.training) and the
CLI; it imports none of them. ``uri``, ``errors`` and ``model_dir`` are part of the pure core (the API
validates URIs with them): no network client is imported at module level anywhere in this package.
"""
