"""Endpoint overrides: a bare ``scheme://host:port`` (a local replay, a proxy) gets the exchange's own path."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["with_default_path"]


def with_default_path(url: str, default: str) -> str:
    """``url`` as given when it has a path, else ``url`` plus the path of ``default``."""
    if urlsplit(url).path.strip("/"):
        return url
    return url.rstrip("/") + urlsplit(default).path
