"""A directory the operator named, checked before any slow work needs it."""

from __future__ import annotations

import os
from pathlib import Path


def file_in_the_way(directory: Path) -> Path | None:
    """The path (``directory`` itself or one of its parents) that exists but is not a
    directory, so ``directory`` can neither be used nor created; None when all is well."""
    path = directory.expanduser()
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return None if os.path.isdir(candidate) else candidate
    return None
