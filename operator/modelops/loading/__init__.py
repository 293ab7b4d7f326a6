"""Turning a verified model directory into a live estimator (``loader``), shared by the server and the
trainer's evaluation. Apart from modelops.artifacts (the format) because it needs scikit-learn and numpy,
and apart from modelops.serving and modelops.training so that neither imports the other."""
