"""Broken regression pipelines caught by the labels check, varying the correct rows of regression.py."""

from __future__ import annotations

CASES = []
