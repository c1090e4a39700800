"""The built-in suite that `pytest --pipeline-checks` collects (see `checks_suite.py`)."""

from pathlib import Path

SUITE_MODULE = Path(__file__).with_name("checks_suite.py")
