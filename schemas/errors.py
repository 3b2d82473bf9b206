"""Operator-facing errors: the CLI prints the message as one line saying what to do.

A leaf module: every package may import it; it imports nothing of the project.
"""

from __future__ import annotations

import os
from pathlib import Path


class OperatorError(RuntimeError):
    """A mistake in set-up or configuration (Java missing, broker unreachable, bad config).

    The message is the whole answer: what is wrong and what to do about it.
    """


def file_in_the_way(directory: Path) -> Path | None:
    """The path (``directory`` itself or one of its parents) that exists but is not a
    directory, so ``directory`` can neither be used nor created; None when all is well."""
    path = directory.expanduser()
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return None if os.path.isdir(candidate) else candidate
    return None
