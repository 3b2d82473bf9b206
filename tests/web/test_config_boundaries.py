"""One source of configuration: only ``frontdoor/`` (the CLI and its wiring) reads settings or
the process environment, and no other package imports ``frontdoor/``; each stage gets explicit
arguments. Read from the source with ``ast``, so a new import or ``os.environ`` anywhere fails
here before it ships."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Pure source reading: sockets an earlier test left to the garbage collector (kafka-python's
# refused connection attempts) must not fail it when the collector happens to run here.
pytestmark = [pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
              pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning")]

PACKAGES = ("classifiers", "connectors", "ingest", "outbound", "router", "schemas", "tickets", "web")


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "node_modules" not in p.parts)


def offences(path: Path, root: Path = ROOT) -> list[str]:
    """Each import of frontdoor and each read of the process environment in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root).as_posix()}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] == "frontdoor":
            found.append(f"{where}: imports {node.module}")
        elif isinstance(node, ast.Import):
            found.extend(f"{where}: imports {alias.name}" for alias in node.names
                         if alias.name.split(".")[0] == "frontdoor")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb", "putenv"):
            found.append(f"{where}: reads os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and \
                any(alias.name in ("environ", "getenv", "environb") for alias in node.names):
            found.append(f"{where}: imports os.environ/getenv")
    return found


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text("import os\nfrom frontdoor.settings import Settings\nimport frontdoor.wiring\n"
                   "x = os.getenv('A') or os.environ['B']\nfrom frontdoor import wiring\n", encoding="utf-8")
    assert sorted(o.split(": ", 1)[1] for o in offences(bad, tmp_path)) == sorted([
        "imports frontdoor.settings", "imports frontdoor.wiring", "imports frontdoor",
        "reads os.getenv", "reads os.environ"])


# Known offences another change is removing (issue 9, item 6): listed by file so that a new one
# anywhere fails at once, and an entry is deleted here when its file is fixed.
PENDING = {
    "connectors/imap_poller.py": "a mailbox's password_env names a variable read at login",
    "ingest/broker.py": "JAVA_HOME, the JDK's own convention for finding java",
}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_but_frontdoor_imports_frontdoor_or_reads_the_environment(package: str) -> None:
    found = [o for p in sources() if p.relative_to(ROOT).parts[0] == package for o in offences(p)
             if o.split(":", 1)[0] not in PENDING]
    assert found == [], "read settings in frontdoor/ and pass values down:\n" + "\n".join(found)


def test_pending_entries_are_still_needed() -> None:
    """When a listed file is fixed, its entry goes: the list only shrinks."""
    still = {o.split(":", 1)[0] for p in sources() for o in offences(p)}
    assert sorted(set(PENDING) - still) == []
