"""Regression baselines: a pipeline run's fingerprint, stored as text, compared within tolerances."""
