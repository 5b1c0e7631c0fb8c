"""Where the lake lives: a local folder by default, any fsspec URL (``s3://bucket/prefix``) otherwise."""

from __future__ import annotations

import os

import fsspec
from fsspec.implementations.local import LocalFileSystem

__all__ = ["filesystem", "is_local", "join", "lake_root"]


def lake_root(root: str | None = None) -> str:
    """The lake root: the argument, else ``$MDP_LAKE``, else ``./lake``."""
    return (root or os.environ.get("MDP_LAKE") or "lake").rstrip("/")


def filesystem(root: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path without protocol) for a root; S3 options come from the usual AWS variables
    plus ``MDP_S3_ENDPOINT`` (a moto or MinIO endpoint)."""
    options: dict[str, object] = {}
    if root.startswith("s3://") and os.environ.get("MDP_S3_ENDPOINT"):
        options["endpoint_url"] = os.environ["MDP_S3_ENDPOINT"]
    fs, path = fsspec.core.url_to_fs(root, **options)
    if isinstance(fs, LocalFileSystem):
        path = os.path.abspath(path)
    return fs, path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def join(*parts: str) -> str:
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts))
