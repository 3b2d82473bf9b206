"""``frontdoor up`` / ``make run``: the local broker plus every stage, as child processes."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

from frontdoor import wiring
from frontdoor.settings import Settings

log = logging.getLogger(__name__)

# Each stage is a ``frontdoor`` subcommand; they all read the same environment.
STAGES: dict[str, list[str]] = {
    "web": ["web"],
    "smtp": ["smtp"],
    "imap": ["imap"],
    "route": ["route"],
    "tickets": ["tickets"],  # after 'frontdoor db upgrade', which run_all applies first
    "outbound": ["outbound"],  # acknowledgements and replies from the outbox
    "clocks": ["tickets", "sweep-clocks", "--every", "900"],  # due-soon / breached, every 15 minutes
}


def stages(settings: Settings) -> dict[str, list[str]]:
    """The stages this deployment runs: the IMAP poller only when mailboxes are configured."""
    return {name: argv for name, argv in STAGES.items() if name != "imap" or settings.imap_config}


def run_all(settings: Settings) -> None:
    address = wiring.connect(settings, start_local=True)
    log.info("broker ready on %s; topics in place", address)
    from tickets.db import upgrade

    before, after = upgrade(settings.effective_database_url)  # the stages refuse a database behind
    log.info("tickets database at %s%s", after, "" if before == after else f" (was {before or 'empty'})")
    children: dict[str, subprocess.Popen[bytes]] = {}
    wanted = stages(settings)
    for name, argv in wanted.items():
        children[name] = subprocess.Popen([sys.executable, "-m", "frontdoor", *argv])  # noqa: S603
        log.info("started %s (pid %d)", name, children[name].pid)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("Frontdoor is up (%d stages). Ctrl-C stops the stages; 'frontdoor kafka stop' "
             "stops the broker.", len(children))
    while not stopping:
        for name, child in list(children.items()):
            code = child.poll()
            if code is None:
                continue
            if code in (0, 2):  # finished, or an operator mistake it has explained: restarting won't help
                log.warning("%s exited with %s; not restarting it", name, code)
                del children[name]
                continue
            log.error("%s exited with %s; restarting", name, code)
            time.sleep(1)
            children[name] = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "frontdoor", *wanted[name]]
            )
        time.sleep(1)
    for child in children.values():
        child.terminate()
    for child in children.values():
        child.wait(timeout=30)
