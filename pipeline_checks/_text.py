"""Lists in messages: the first few items named, the rest counted."""

from __future__ import annotations

from collections.abc import Iterable

SHOWN = 3


def listed(items: Iterable, shown: int = SHOWN) -> str:
    """'a, b, c and 4 more': the first `shown` items, joined; the others counted."""
    items = [str(item) for item in items]
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def shortened(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with "..." where it is longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
