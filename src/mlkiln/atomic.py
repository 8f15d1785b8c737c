"""Write a file all at once or not at all: a temporary sibling, renamed into place at the end.

A failed or interrupted write leaves the old file (or none), never half of a new one.
(Bundles are directories and have their own, signal-safe variant: :func:`mlkiln.bundle.write_bundle`.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)
