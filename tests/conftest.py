"""Shared fixtures: a real Kafka broker started by the project's own command.

When FRONTDOOR_KAFKA_BOOTSTRAP names a cluster, tests use it and skip the ones that need
to stop and start the broker.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ingest.admin import ensure_topics
from schemas.blobs import FilesystemBlobStore
from schemas.topics import CORE_TOPICS, TopicSpec
from tests.processes import Processes

ROOT = Path(__file__).resolve().parent.parent


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_pair() -> int:
    """A port p such that p and p+1 are both free on loopback (client and controller).

    Chosen below the kernel's ephemeral range: a server stopped and restarted by a test must
    find its ports free again, and a port in that range can be taken in the meantime as the
    local end of any outgoing connection (or by a client reconnecting to it, which connects to
    itself when it draws the very port it aims at)."""
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(10000, max(10002, low - 2))
        try:
            for candidate in (port, port + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of loopback ports")


def frontdoor(*args: str, env: dict[str, str], check: bool = True,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frontdoor", *args], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=timeout, check=check,
    )


@dataclass
class KafkaHandle:
    bootstrap: str
    env: dict[str, str]
    external: bool

    def stop(self) -> None:
        if self.external:
            pytest.skip("broker is external (FRONTDOOR_KAFKA_BOOTSTRAP): cannot stop it")
        frontdoor("kafka", "stop", env=self.env)

    def start(self) -> None:
        if not self.external:
            started = frontdoor("kafka", "start", env=self.env, check=False)
            if started.returncode != 0:
                pytest.fail(f"'frontdoor kafka start' failed: {started.stderr.strip()[-2000:]}")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
    external = os.environ.get("FRONTDOOR_KAFKA_BOOTSTRAP")
    if external:
        ensure_topics(external, CORE_TOPICS)
        yield KafkaHandle(external, dict(os.environ), external=True)
        return
    var = tmp_path_factory.mktemp("var")
    port = free_port_pair()
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(var), "FRONTDOOR_KAFKA_PORT": str(port)}
    env.pop("FRONTDOOR_KAFKA_BOOTSTRAP", None)
    started = frontdoor("kafka", "start", env=env, check=False)
    if started.returncode != 0:
        pytest.fail(f"'frontdoor kafka start' failed: {started.stderr.strip()[-2000:]}")
    handle = KafkaHandle(f"127.0.0.1:{port}", env, external=False)
    try:
        yield handle
    finally:
        frontdoor("kafka", "stop", env=env, check=False)


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start child processes through this: whatever way the test ends, each is stopped, waited
    for and its pipes closed (see tests/processes.py)."""
    started = Processes()
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def fresh_topic(kafka: KafkaHandle) -> str:
    """A new, empty topic for one test (3 partitions), so tests never see each other's data."""
    name = f"test.{uuid.uuid4().hex[:12]}"
    ensure_topics(kafka.bootstrap, [TopicSpec(name, 3, "test")])
    return name


@pytest.fixture
def blob_store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL from Debian's packages (initdb + pg_ctl), run as the postgres user."""
    import glob
    import os
    import shutil
    import subprocess
    import tempfile

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"))  # Debian keeps them off PATH
    bindir = debian[-1] if debian else "/usr/lib/postgresql/bin"
    initdb = shutil.which("initdb") or f"{bindir}/initdb"
    pg_ctl = shutil.which("pg_ctl") or f"{bindir}/pg_ctl"
    if not os.path.exists(initdb):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="fd-pg-"))
    data = root / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port_pair()
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def fresh_postgres_database(server_url: str, template: str | None = None) -> str:
    """A new database on the server: empty, or a copy of the database named ``template``."""
    name = f"fd_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session, for tests to copy."""
    from tickets.db import upgrade

    path = tmp_path_factory.mktemp("migrated") / "tickets.db"
    upgrade(f"sqlite:///{path}")
    assert not path.with_name(path.name + "-wal").exists()  # everything is in the one file
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database migrated to head once per session (a template)."""
    from tickets.db import upgrade

    url = fresh_postgres_database(postgres_url)
    upgrade(url)  # disposes its engine: CREATE DATABASE ... TEMPLATE needs no one connected
    try:
        yield url.rsplit("/", 1)[1]
    finally:
        drop_postgres_database(postgres_url, url)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tickets.db'}"
        return
    server = request.getfixturevalue("postgres_url")
    url = fresh_postgres_database(server)
    try:
        yield url
    finally:
        drop_postgres_database(server, url)
