"""Child processes a test starts (stage workers, ``frontdoor ...`` commands), reaped on every path.

A test that times out or fails an assertion while a child still runs must not leave it behind:
a live child keeps its consumer-group membership and its CPU on a 2-core machine, and the
``Popen`` object garbage-collected later raises ``ResourceWarning`` (unclosed pipes, "subprocess
is still running") inside whichever test happens to run then, which ``filterwarnings = error``
fails. The ``processes`` fixture in ``tests/conftest.py`` hands out a :class:`Processes`;
everything it started is stopped (SIGTERM, then SIGKILL), waited for and its files closed when
the test ends.

A child's output goes to temporary files, not pipes: a test waiting for one worker does not
read the others' pipes, and a worker that fills its 64 KiB pipe (a few logged retries with
their SQL) blocks in the middle of its work, still a group member, so the worker being waited
for hangs in a rebalance that waits for it (up to max.poll.interval.ms, 300 s).
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Finished:
    returncode: int
    out: str
    err: str


@dataclass(frozen=True)
class _Child:
    proc: subprocess.Popen[str]
    out: IO[str] | None  # temporary files holding what it wrote, when not the caller's own
    err: IO[str] | None

    def output(self) -> tuple[str, str]:
        texts = []
        for file in (self.out, self.err):
            if file is None or file.closed:
                texts.append("")
                continue
            file.flush()
            file.seek(0)
            texts.append(file.read())
        return texts[0], texts[1]

    def close(self) -> None:
        for file in (self.out, self.err, self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if file is not None:
                file.close()


def _output_file() -> IO[str]:
    # O_APPEND: the child shares the file offset, so reading it while the child runs must not
    # move where the child writes next.
    return tempfile.TemporaryFile("a+", encoding="utf-8", errors="replace")


def stop(proc: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """SIGTERM, SIGKILL after ``grace_s``; return once it has been waited for and its pipes
    (if any) are closed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


class Processes:
    """Starts children and remembers them, so teardown can reap them all."""

    def __init__(self) -> None:
        self.children: list[_Child] = []

    def start(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT,
              stdout: int | IO[Any] | None = None,
              stderr: int | IO[Any] | None = None) -> subprocess.Popen[str]:
        """``Popen`` in text mode; ``env`` None inherits this process's. Output the caller does
        not direct elsewhere is kept in temporary files that :meth:`finish` reads."""
        out = _output_file() if stdout is None else None
        err = _output_file() if stderr is None else None
        proc = subprocess.Popen(list(args), cwd=cwd, env=None if env is None else dict(env),  # noqa: S603
                                stdout=out if out is not None else stdout,
                                stderr=err if err is not None else stderr, text=True)
        self.children.append(_Child(proc, out, err))
        return proc

    def _child(self, proc: subprocess.Popen[str]) -> _Child:
        return next(c for c in self.children if c.proc is proc)

    def finish(self, proc: subprocess.Popen[str], timeout: float, what: str = "worker") -> Finished:
        """Wait for ``proc`` to leave by itself and return its code and output; past ``timeout``
        stop it and fail the test with the end of its stderr (why it hung is there)."""
        child = self._child(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # A worker that registered faulthandler on SIGUSR1 (tests/tickets/ticket_worker.py)
            # writes every thread's stack to stderr; any other child just dies of it.
            proc.send_signal(signal.SIGUSR1)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            stop(proc)
            pytest.fail(f"{what} (pid {proc.pid}) still running after {timeout:.0f} s; stopped it. "
                        f"Its stderr ends:\n{child.output()[1][-8000:]}")
        out, err = child.output()
        return Finished(proc.returncode, out, err)

    def output(self, proc: subprocess.Popen[str]) -> tuple[str, str]:
        """What ``proc`` wrote so far (stdout, stderr)."""
        return self._child(proc).output()

    def stop_all(self) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in self.children:
            stop(child.proc)
            child.close()
        self.children.clear()
