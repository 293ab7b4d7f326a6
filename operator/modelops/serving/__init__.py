"""The model server that runs in serving pods (`modelops serve`).

Layout: ``server`` (supervisor: load, bind, fork, drift, restart stuck workers, SIGTERM), ``context``
(what a worker gets from the supervisor, as data), ``worker`` (one event loop per process),
``dataplane`` (protocol-free: predict, in-flight, timeouts, metrics, request log) over ``batching``
(the micro-batcher); two thin adapters over the data plane: REST (``http``: httptools protocol,
framing, limits; ``rest``: the route table) and gRPC (``grpc_service``: OIP v2 calls, any stack;
``grpc_server``: grpcio's asyncio server and grpc.health.v1; stubs in ``grpc_v2``),
``protocol`` / ``grpc_codec`` (OIP v2 / KServe v1 decoding), ``heartbeat`` (shared-memory worker
heartbeats), ``predictor`` (the fast predict path), ``metrics`` (Prometheus, multiprocess),
``drift_monitor`` (rows from workers to PSI in the supervisor). The pod's init step (`modelops fetch`)
and the storage it reads are modelops.artifacts'; safe model loading is modelops.loading's.

gRPC (``--grpc-port``): ``inference.GRPCInferenceService`` (ServerLive, ServerReady, ModelReady,
ServerMetadata, ModelMetadata, ModelInfer with raw or typed contents) and ``grpc.health.v1.Health``.

Endpoints: ``GET /v2/health/live``, ``GET /v2/health/ready`` (503 while draining), ``GET /v2``,
``GET /v2/models/<name>[/versions/<v>]``, ``GET .../ready``, ``POST .../infer`` (JSON or the binary
tensor extension; outputs ``predict`` and, for classifiers, ``predict_proba``),
``GET /v1/models``, ``GET /v1/models/<name>``, ``POST /v1/models/<name>:predict``, ``GET /metrics``,
``POST /v2/models/<name>[/versions/<v>]/feedback`` (ground-truth labels by request id: ``feedback``;
sampled requests and labels as Parquet: ``datalog``, through modelops.artifacts.store).

Metrics (labels model, version, revision on all): ``modelops_requests_total{protocol,code}``
(inference requests only, probes excluded; ``code`` is the HTTP status, or the one a gRPC status
maps to), ``modelops_request_duration_seconds{protocol}``, ``modelops_batch_size``,
``modelops_inflight_requests``, ``modelops_predictions_total{class}`` (classifiers) or
``modelops_prediction_value`` (regressors), ``modelops_feature_drift_psi{feature}``,
``modelops_prediction_drift_psi``, ``modelops_drift_window_rows``. PSI appears only once the
drift window holds ``--drift-min-rows`` rows: no data is never reported as "no drift".

The server needs a writable directory for the metrics of its processes: ``$PROMETHEUS_MULTIPROC_DIR``
if set, else a fresh one under ``$TMPDIR`` (an ``emptyDir`` under a read-only root filesystem).
"""
