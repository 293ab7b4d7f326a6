"""Where the request log lives under its URI: written by the servers (modelops.serving.datalog), read
by ``modelops dataset build`` and the retraining Job (modelops.training.served_data).

- ``<URI>/requests/<time>-<host>-<pid>-<seq>.parquet``: ``_id``, ``_row``, ``_time`` (Unix seconds),
  ``_model``, ``_version``, ``_revision``, ``_prediction`` (JSON text), then one float64 column per
  feature, in the model's order; the schema metadata ``modelops.features`` lists the feature names.
- ``<URI>/labels/...parquet``: ``_id``, ``_row``, ``_time``, ``_label`` (JSON text, so a label keeps
  its type).
"""

from __future__ import annotations

REQUESTS_DIR = "requests"
LABELS_DIR = "labels"
FEATURES_KEY = b"modelops.features"
