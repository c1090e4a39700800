"""Broken regression pipelines caught by the agreement check, varying the correct rows of regression.py."""

from __future__ import annotations

CASES = []
