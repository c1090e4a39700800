"""pytest's rule for a configuration key it does not know: a warning, an error under --strict-config."""

from __future__ import annotations

import pytest


def warn_or_fail_if_strict(config: pytest.Config, message: str) -> None:
    """As pytest treats an unknown ini key: PytestConfigWarning, or UsageError under --strict-config
    (or pytest 9's `strict`)."""
    # pytest's own helper (since 6.0) knows where each version keeps the strict flags.
    own = getattr(config, "_warn_or_fail_if_strict", None)
    if own is not None:
        own(message + "\n")
        return
    if getattr(config.option, "strict_config", False):
        raise pytest.UsageError(message)
    config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
