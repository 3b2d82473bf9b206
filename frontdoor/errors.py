"""Operator-facing errors: the CLI prints the message as one line saying what to do."""

from __future__ import annotations


class OperatorError(RuntimeError):
    """A mistake in set-up or configuration (Java missing, broker unreachable, bad config).

    The message is the whole answer: what is wrong and what to do about it.
    """
