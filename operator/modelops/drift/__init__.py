"""Drift statistics (PSI over binned baselines) shared by the model server and analysis."""
