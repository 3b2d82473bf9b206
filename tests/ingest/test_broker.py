"""The local broker runner and what an operator sees when set-up goes wrong."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from tests.conftest import KafkaHandle, frontdoor


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    env.update(FRONTDOOR_VAR_DIR=str(tmp_path / "var"), FRONTDOOR_CACHE_DIR=str(tmp_path / "cache"))
    env.update(extra)
    return env


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_java_prints_one_line_with_the_fix(tmp_path: Path) -> None:
    env = _env(tmp_path, PATH=str(tmp_path / "empty-bin"))
    env.pop("JAVA_HOME", None)
    result = frontdoor("kafka", "start", env=env, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Java 17+ not found" in lines[0] and "FRONTDOOR_KAFKA_BOOTSTRAP" in lines[0]


def test_missing_maven_prints_one_line_with_the_fix(tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java, "the test machine has a JDK"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(os.path.realpath(java))
    env = _env(tmp_path, PATH=str(bin_dir))
    env.pop("JAVA_HOME", None)
    result = frontdoor("kafka", "start", env=env, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Maven not found" in lines[0] and "apt-get install maven" in lines[0]


def test_broker_down_at_start_retries_with_backoff_then_says_what_to_do(tmp_path: Path) -> None:
    env = _env(tmp_path, FRONTDOOR_KAFKA_BOOTSTRAP=f"127.0.0.1:{_closed_port()}",
               FRONTDOOR_CONNECT_RETRIES="3")
    result = frontdoor("bench", "bus", "--json", env=env, check=False, timeout=120)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert sum("retrying in" in line for line in lines) == 2  # tries 1 and 2 back off, 3 gives up
    assert "retrying in 0.5s" in lines[0] and "retrying in 1.0s" in lines[1]
    assert lines[-1].startswith("frontdoor: no Kafka broker answers")
    assert "the cluster FRONTDOOR_KAFKA_BOOTSTRAP names is running" in lines[-1]  # not "start one"
    assert "Traceback" not in result.stderr
    # 'kafka start' is what scripts wait on: with a configured cluster it must answer, or fail
    started = frontdoor("kafka", "start", env={**env, "FRONTDOOR_CONNECT_RETRIES": "1"}, check=False)
    assert started.returncode == 3 and "no Kafka broker answers" in started.stderr


def test_bad_configuration_is_one_line(tmp_path: Path) -> None:
    result = frontdoor("kafka", "status", env=_env(tmp_path, FRONTDOOR_KAFKA_PORT="not-a-port"),
                       check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "frontdoor: bad configuration for FRONTDOOR_KAFKA_PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


@pytest.mark.kafka
def test_status_answers_and_stop_touches_only_our_broker(kafka: KafkaHandle, tmp_path: Path) -> None:
    if kafka.external:
        pytest.skip("external broker")
    assert frontdoor("kafka", "status", env=kafka.env, check=False).returncode == 0
    # Another var/ directory has no broker of its own: stop must not touch the running one.
    other = {**kafka.env, "FRONTDOOR_VAR_DIR": str(tmp_path / "other-var")}
    assert "was not running" in frontdoor("kafka", "stop", env=other).stdout
    assert frontdoor("kafka", "status", env=kafka.env, check=False).returncode == 0
    # A nothing-listening address reports down with exit 1.
    down = {**kafka.env, "FRONTDOOR_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}"}
    result = frontdoor("kafka", "status", env=down, check=False)
    assert result.returncode == 1 and "kafka down" in result.stderr


@pytest.mark.kafka
def test_start_is_idempotent(kafka: KafkaHandle) -> None:
    if kafka.external:
        pytest.skip("external broker")
    result = frontdoor("kafka", "start", env=kafka.env)
    assert f"kafka ready on {kafka.bootstrap}" in result.stdout


def test_cluster_ids_never_look_like_an_option() -> None:
    from ingest.broker import _kafka_uuid

    ids = [_kafka_uuid() for _ in range(5000)]  # about 78 would start with "-" by chance
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("FRONTDOOR_KAFKA_BOOTSTRAP", "http://127.0.0.1:9092", "is not host:port"),
    ("FRONTDOOR_KAFKA_BOOTSTRAP", "127.0.0.1:notaport", "is not host:port"),
    ("FRONTDOOR_CONNECT_RETRIES", "-1", "FRONTDOOR_CONNECT_RETRIES"),
    ("FRONTDOOR_PUBLIC_URL", "contact.council.gov.uk", "is not an http(s) URL"),
    ("FRONTDOOR_WEB_PORT", "99999", "FRONTDOOR_WEB_PORT"),
])
def test_malformed_settings_are_named_not_mistaken_for_a_down_broker(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path), variable: value}
    result = frontdoor("kafka", "status", env=env, check=False)
    assert result.returncode == 2
    assert "bad configuration" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr and "no Kafka broker answers" not in result.stderr


def _shared_cache() -> str:
    """The jars the session's broker already fetched (a fresh cache would fetch Kafka again)."""
    from frontdoor.settings import Settings

    return str(os.environ.get("FRONTDOOR_CACHE_DIR") or Settings().cache_dir)


def test_start_refuses_a_port_another_process_holds(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        result = frontdoor("kafka", "start", env=_env(tmp_path, FRONTDOOR_KAFKA_PORT=str(port),
                                                     FRONTDOOR_CACHE_DIR=_shared_cache()), check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in lines[0]
    assert "FRONTDOOR_KAFKA_PORT" in lines[0] and "FRONTDOOR_KAFKA_BOOTSTRAP" in lines[0]
    assert "ready" not in result.stdout


@pytest.mark.kafka
def test_start_beside_another_broker_on_the_port_fails_instead_of_adopting_it(
        kafka: KafkaHandle, tmp_path: Path) -> None:
    if kafka.external:
        pytest.skip("broker is external (FRONTDOOR_KAFKA_BOOTSTRAP)")
    port = kafka.bootstrap.rsplit(":", 1)[1]
    result = frontdoor("kafka", "start", env=_env(tmp_path, FRONTDOOR_KAFKA_PORT=port,
                                                 FRONTDOOR_CACHE_DIR=kafka.env.get("FRONTDOOR_CACHE_DIR")
                                                 or _shared_cache()), check=False)
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert f"port {port}" in line and "FRONTDOOR_KAFKA_PORT" in line
    assert f"FRONTDOOR_KAFKA_BOOTSTRAP=127.0.0.1:{port}" in line
    assert "kafka ready" not in result.stdout
    assert frontdoor("kafka", "status", env=kafka.env, check=False).returncode == 0  # theirs untouched


def test_the_identity_check_reads_our_cluster_id(tmp_path: Path) -> None:
    from ingest.broker import BrokerConfig, LocalBroker

    broker = LocalBroker(BrokerConfig(var_dir=tmp_path / "var", cache_dir=tmp_path / "cache"))
    assert broker.cluster_id() is None
    broker.data_dir.mkdir(parents=True)
    (broker.data_dir / "meta.properties").write_text("#\nnode.id=1\ncluster.id=AbC-123_x\nversion=1\n")
    assert broker.cluster_id() == "AbC-123_x"
