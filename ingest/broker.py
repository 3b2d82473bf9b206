"""A real single-node Apache Kafka (KRaft) for development, tests and ``make run``.

The jars come from Maven Central through Maven, once, into a cache directory; the broker's
data, config, logs and pid file live under ``<var>/kafka``. ``stop`` ends only the process
this runner started (its pid file and its own config path on the command line).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import BrokerSetupError

log = logging.getLogger(__name__)

LOG4J_BINDING = "org.apache.logging.log4j:log4j-slf4j-impl"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>frontdoor</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
message.max.bytes=2097152
log.retention.hours=720
"""

_LOG4J = """\
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName={log_file}
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.state.name=state.change.logger
logger.state.level=WARN
"""


@dataclass(frozen=True)
class BrokerConfig:
    var_dir: Path
    cache_dir: Path
    version: str = "4.1.1"
    port: int = 9092
    heap: str = "512m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def java_major_version(java: str) -> int:
    out = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [java, "-version"], capture_output=True, text=True, check=False
    ).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


class LocalBroker:
    """Fetch, format, start, check and stop one local Kafka node."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.home = config.var_dir.resolve() / "kafka"
        self.data_dir = self.home / "data"
        self.pid_file = self.home / "broker.pid"
        self.server_properties = self.home / "server.properties"
        self.log_file = self.home / "logs" / "server.log"
        self.libs = config.cache_dir.expanduser().resolve() / f"kafka-{config.version}" / "libs"

    # --- set-up -----------------------------------------------------------------------

    def java(self) -> str:
        home = os.environ.get("JAVA_HOME")
        java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
        if not java or not Path(java).exists():
            raise BrokerSetupError(
                "Java 17+ not found: install a JDK (apt-get install openjdk-17-jdk-headless) "
                "or point FRONTDOOR_KAFKA_BOOTSTRAP at a running broker"
            )
        if java_major_version(java) < 17:
            raise BrokerSetupError(
                f"{java} is older than Java 17, which Kafka 4 needs: install a JDK 17+ and set "
                "JAVA_HOME, or point FRONTDOOR_KAFKA_BOOTSTRAP at a running broker"
            )
        return java

    def fetch(self) -> Path:
        """Download the broker's jars with Maven, once; return the libs directory."""
        marker = self.libs.parent / ".complete"
        if marker.exists():
            return self.libs
        mvn = shutil.which("mvn")
        if not mvn:
            raise BrokerSetupError(
                "Maven not found: install it (apt-get install maven) so the Kafka jars can be "
                "fetched, or point FRONTDOOR_KAFKA_BOOTSTRAP at a running broker"
            )
        work = self.libs.parent
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(_POM.format(version=self.config.version))
        log.info("fetching Apache Kafka %s from Maven Central into %s", self.config.version, work)
        self._mvn(mvn, work, "dependency:copy-dependencies", f"-DoutputDirectory={self.libs}")
        core = sorted(self.libs.glob("log4j-core-*.jar"))
        if not core:
            raise BrokerSetupError(f"no log4j-core among the Kafka jars in {self.libs}: delete it and retry")
        log4j_version = core[-1].name.removeprefix("log4j-core-").removesuffix(".jar")
        self._mvn(
            mvn, work, "dependency:copy",
            f"-Dartifact={LOG4J_BINDING}:{log4j_version}", f"-DoutputDirectory={self.libs}",
        )
        marker.write_text(self.config.version)
        return self.libs

    @staticmethod
    def _mvn(mvn: str, work: Path, *args: str) -> None:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [mvn, "-q", "-B", "-f", str(work / "pom.xml"), *args],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise BrokerSetupError(
                "Maven could not fetch the Kafka jars (is Maven Central reachable?): "
                + " | ".join(tail)
            )

    def _classpath(self) -> str:
        return str(self.fetch() / "*")

    def _write_config(self) -> None:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server_properties.write_text(
            _SERVER_PROPERTIES.format(
                port=self.config.port,
                controller_port=self.config.port + 1,
                data_dir=self.data_dir,
            )
        )
        (self.home / "log4j2.properties").write_text(_LOG4J.format(log_file=self.log_file))

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = _kafka_uuid()
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [java, "-cp", self._classpath(),
             f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
             "kafka.tools.StorageTool", "format", "--standalone",
             "-t", cluster_id, "-c", str(self.server_properties)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise BrokerSetupError(f"formatting Kafka storage failed: {proc.stdout}{proc.stderr}".strip())

    # --- lifecycle --------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of the broker this runner started, if that process is still ours."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return None
        return pid if str(self.server_properties) in cmdline and "kafka.Kafka" in cmdline else None

    def start(self, timeout_s: float = 90.0) -> str:
        """Start the broker (if not running) and return only when an admin call succeeds."""
        from ingest.admin import broker_answers

        if self.pid() is not None and broker_answers(self.config.bootstrap):
            self._check_identity()
            return self.config.bootstrap
        java = self.java()
        classpath = self._classpath()
        self._check_ports_free()
        self._write_config()
        self._format_storage(java)
        stdout = (self.home / "logs" / "stdout.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [java, f"-Xms{self.config.heap}", f"-Xmx{self.config.heap}", "-XX:+UseG1GC",
             "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
             f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
             "-cp", classpath, "kafka.Kafka", str(self.server_properties)],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.home,
        )
        stdout.close()
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerSetupError(
                    f"the Kafka broker exited at start (code {proc.returncode}): see {self.log_file} "
                    f"and {self.home / 'logs' / 'stdout.log'}; is port {self.config.port} in use?"
                )
            if broker_answers(self.config.bootstrap, timeout_s=2.0):
                try:
                    self._check_identity()
                except BrokerSetupError:
                    self.stop()
                    raise
                log.info("Kafka %s ready on %s (pid %d)",
                         self.config.version, self.config.bootstrap, proc.pid)
                return self.config.bootstrap
            time.sleep(0.5)
        self.stop()
        raise BrokerSetupError(
            f"the Kafka broker did not answer within {timeout_s:.0f}s: see {self.log_file}"
        )

    def _remedy(self) -> str:
        return (f"set FRONTDOOR_KAFKA_PORT to a free port (the broker also takes the next one for its "
                f"controller), or FRONTDOOR_KAFKA_BOOTSTRAP={self.config.bootstrap} to use the broker "
                "that is there")

    def _check_ports_free(self) -> None:
        """Both ports must be free before the broker starts: otherwise it dies on the clash
        while whatever holds the port answers, and a second checkout would call another
        deployment's broker its own."""
        for port in (self.config.port, self.config.port + 1):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no clash
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise BrokerSetupError(f"port {port} on 127.0.0.1 is in use by another process: "
                                           f"{self._remedy()}") from None

    def cluster_id(self) -> str | None:
        """The cluster id this runner formatted its storage with."""
        try:
            text = (self.data_dir / "meta.properties").read_text("utf-8")
        except OSError:
            return None
        found = re.search(r"^cluster\.id=(\S+)", text, re.MULTILINE)
        return found.group(1) if found else None

    def _check_identity(self) -> None:
        """The broker answering on our port must be the one we started: our process alive,
        and the cluster id it reports the one in our storage's meta.properties."""
        from ingest.admin import describe_cluster_id

        if self.pid() is None:
            raise BrokerSetupError(f"a Kafka broker this runner did not start answers on port "
                                   f"{self.config.port}: {self._remedy()}")
        ours, theirs = self.cluster_id(), describe_cluster_id(self.config.bootstrap)
        if ours is not None and theirs is not None and ours != theirs:
            raise BrokerSetupError(f"the Kafka broker on port {self.config.port} is cluster {theirs}, "
                                   f"not ours ({ours}): {self._remedy()}")

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker this runner started; True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.pid() is not None:
            if _reap(pid):
                break
            time.sleep(0.2)
        if self.pid() is not None:
            os.killpg(pid, signal.SIGKILL)
            time.sleep(0.5)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> bool:
        from ingest.admin import broker_answers

        return broker_answers(self.config.bootstrap)


def _reap(pid: int) -> bool:
    """Collect a child that exited (when we are its parent); True once it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


def _kafka_uuid() -> str:
    """A cluster id in Kafka's own form: 16 random bytes, URL-safe base64 without padding.
    Like Kafka's ``Uuid.randomUuid`` it never starts with "-", which the format tool would
    read as an option (one start in 64 failed with "--cluster-id expected one argument")."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
