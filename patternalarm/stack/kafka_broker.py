"""The local Kafka broker: one KRaft node (broker + controller) run from the jars pom.xml pins.

There is no Docker engine and no Kafka tarball here, so ``make up`` runs ``kafka.Kafka`` straight
from the jar folder that scripts/jars.sh fills from Maven Central. Everything it writes lives under
var/: ``var/kafka/`` (server.properties, log4j config, the cluster id, the data directory),
``var/log/kafka.log`` and ``var/run/kafka.pid``.

Standard library only, like the rest of patternalarm.stack: it runs before any virtualenv exists.
Health is checked by speaking the Kafka protocol (a Metadata request) over a plain socket, and
topics are created with the broker jars' own ``TopicCommand``, so no Python Kafka client is needed.

Usage from a shell:  python3 -m patternalarm.stack.kafka_broker {start|stop|status|topics|jars}
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from patternalarm.config import REPO_ROOT, Settings, load
from patternalarm.stack import processes

NAME = "kafka"
HEAP = "-Xmx512m"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class KafkaError(RuntimeError):
    """The broker would not start, answer or create topics; the message says why and where to look."""


# --- jars -----------------------------------------------------------------------------------------

def jar_folder(settings: Settings, kind: str) -> Path:
    """``$PATTERNALARM_CACHE/jars/<pom hash>/<kind>`` (kind: kafka or flink), fetched if missing.

    The hash is the one scripts/jars.sh uses (first 16 hex digits of sha256(pom.xml)), so Python and
    the shell agree on the folder without either calling the other when it is already complete.
    """
    digest = hashlib.sha256((REPO_ROOT / "pom.xml").read_bytes()).hexdigest()[:16]
    base = settings.resolved_cache_dir() / "jars" / digest
    if not (base / ".complete").exists():
        env = {**os.environ, "PATTERNALARM_CACHE": str(settings.resolved_cache_dir())}
        proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "jars.sh")], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0 or not (base / ".complete").exists():
            raise KafkaError(f"could not fetch the jars of pom.xml: {proc.stderr.strip()[-2000:]}\n"
                             "fix the error above and run scripts/jars.sh")
    return base / kind


def udf_jar(settings: Settings) -> Path:
    """The detection job's table-function jar (streaming/udf), built by scripts/udf.sh if missing.

    Always asks the script, which hashes the module's sources (milliseconds when the jar exists), so
    the hash that names the folder is defined in one place.
    """
    env = {**os.environ, "PATTERNALARM_CACHE": str(settings.resolved_cache_dir())}
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "udf.sh")], env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("UDF_JAR=")]
    jar = Path(lines[-1].split("=", 1)[1]) if lines else None
    if proc.returncode != 0 or jar is None or not jar.exists():
        raise KafkaError(f"could not build the job's UDF jar: {proc.stderr.strip()[-2000:]}\n"
                         "fix the error above and run scripts/udf.sh")
    return jar


def java_executable() -> str:
    """The JDK's java: JAVA_HOME's, else the one on PATH (what PyFlink starts the job with too)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise KafkaError("no java found: install a JDK 17 (apt-get install openjdk-17-jdk-headless) "
                         "or set JAVA_HOME")
    return java


# --- files under var/kafka ------------------------------------------------------------------------

def kafka_dir(settings: Settings) -> Path:
    path = settings.resolved_var_dir() / "kafka"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(settings: Settings) -> Path:
    return kafka_dir(settings) / "data"


def log_file(settings: Settings) -> Path:
    return processes.log_path(settings, NAME)


def _cluster_id(settings: Settings) -> str:
    """The cluster id kept in var/kafka/cluster.id, generated once in Kafka's own format.

    Kafka ids are 16 random bytes in URL-safe base64 without padding; like ``Uuid.randomUuid`` we
    reject ids starting with '-' (they read as command-line options).
    """
    path = kafka_dir(settings) / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            break
    path.write_text(candidate + "\n")
    return candidate


def _write_server_properties(settings: Settings) -> Path:
    """KRaft combined mode on loopback; rewritten every start so port changes take effect."""
    host = "127.0.0.1"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{settings.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{host}:{settings.kafka_port},CONTROLLER://{host}:{settings.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{settings.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir(settings)),
        "num.partitions": str(settings.topic_partitions),
        # One node: internal topics cannot be replicated.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Consumers in tests join at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        # A developer machine: keep a week of events but never more than ~1 GiB per partition.
        "log.retention.hours": "168",
        "log.retention.bytes": str(1 << 30),
        "log.segment.bytes": str(64 << 20),
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
    }
    path = kafka_dir(settings) / "server.properties"
    path.write_text("# written by patternalarm.stack.kafka_broker on each start; edits are lost\n"
                    + "".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def _write_log4j(settings: Settings) -> tuple[Path, Path]:
    """Broker log4j (to stdout, which processes.start appends to var/log/kafka.log) and a quiet
    one for the command-line tools (warnings to stderr)."""
    pattern = "[%d] %p %m (%c)%n"
    broker = kafka_dir(settings) / "log4j.properties"
    broker.write_text(
        "log4j.rootLogger=INFO, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        f"log4j.appender.stdout.layout.ConversionPattern={pattern}\n"
        # These are the chatty ones Kafka's own config also turns down.
        "log4j.logger.kafka.request.logger=WARN\n"
        "log4j.logger.state.change.logger=WARN\n"
        "log4j.logger.kafka.log.LogCleaner=WARN\n"
        "log4j.logger.org.apache.kafka.controller=INFO\n"
        "log4j.logger.kafka.controller=INFO\n")
    tools = kafka_dir(settings) / "tools-log4j.properties"
    tools.write_text(
        "log4j.rootLogger=WARN, stderr\n"
        "log4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stderr.Target=System.err\n"
        "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
        f"log4j.appender.stderr.layout.ConversionPattern={pattern}\n")
    return broker, tools


def _java_cmd(settings: Settings, main: str, args: list[str], log4j: Path, heap: str) -> list[str]:
    return [java_executable(), heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}", f"-Dkafka.logs.dir={processes.log_path(settings, NAME).parent}",
            "-cp", f"{jar_folder(settings, 'kafka')}/*", main, *args]


def _format_storage(settings: Settings, server_properties: Path, tools_log4j: Path) -> None:
    """Format the data directory once; a formatted one holds meta.properties and is left alone."""
    if (data_dir(settings) / "meta.properties").exists():
        return
    cmd = _java_cmd(settings, "kafka.tools.StorageTool",
                    ["format", "-t", _cluster_id(settings), "-c", str(server_properties)], tools_log4j, "-Xmx256m")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaError(f"formatting {data_dir(settings)} failed: {(proc.stdout + proc.stderr).strip()[-2000:]}\n"
                         f"if the data is disposable, delete {kafka_dir(settings)} and start again")


# --- lifecycle ------------------------------------------------------------------------------------

def _our_broker(pid: int) -> bool:
    """True if pid is a kafka.Kafka JVM (guards against a recycled pid in a stale pid file)."""
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def start(settings: Settings) -> None:
    """Start the broker unless it already answers; wait until it serves metadata.

    Starting twice is harmless: a live broker of ours is left as it is. Concurrent starts (``make up``
    while a test session starts the shared broker) are serialised by a lock file, so only one JVM runs.
    """
    with (kafka_dir(settings) / ".start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _start_locked(settings)


def _start_locked(settings: Settings) -> None:
    pid = processes.read_pid(settings, NAME)
    if pid and _our_broker(pid):
        _wait_ready(settings)
        return
    if pid:  # the pid file names some other process: it is stale
        processes.pid_file(settings, NAME).unlink(missing_ok=True)
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if processes.port_open(port):
            raise KafkaError(f"port {port} on 127.0.0.1 is taken by a process that is not this stack's broker "
                             f"(see `ss -ltnp 'sport = :{port}'`); stop it or set PA_KAFKA_PORT / "
                             "PA_KAFKA_CONTROLLER_PORT")
    server_properties = _write_server_properties(settings)
    broker_log4j, tools_log4j = _write_log4j(settings)
    _format_storage(settings, server_properties, tools_log4j)
    cmd = _java_cmd(settings, "kafka.Kafka", [str(server_properties)], broker_log4j, HEAP)
    processes.start(settings, NAME, cmd, cwd=kafka_dir(settings))
    try:
        _wait_ready(settings)
    except KafkaError:
        stop(settings)
        raise


def _wait_ready(settings: Settings) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "not started"
    while time.monotonic() < deadline:
        ok, last = status(settings)
        if ok:
            return
        if processes.read_pid(settings, NAME) is None:
            raise KafkaError(f"the Kafka broker exited during start-up ({last}).\n"
                             f"{processes.log_tail(settings, NAME, 40)}")
        time.sleep(0.5)
    raise KafkaError(f"the Kafka broker did not answer within {START_TIMEOUT_S:.0f}s ({last}); "
                     f"read {log_file(settings)}.\n{processes.log_tail(settings, NAME, 40)}")


def stop(settings: Settings) -> None:
    """SIGTERM the broker's process group (a clean shutdown takes a few seconds), then SIGKILL it."""
    pid = processes.read_pid(settings, NAME)
    if pid and not _our_broker(pid):
        processes.pid_file(settings, NAME).unlink(missing_ok=True)
        return
    processes.stop(settings, NAME, timeout_s=STOP_TIMEOUT_S)


def status(settings: Settings) -> tuple[bool, str]:
    """(healthy, one-line description): our process is alive, the port accepts and Metadata answers."""
    pid = processes.read_pid(settings, NAME)
    where = f"127.0.0.1:{settings.kafka_port}"
    if pid is None:
        return False, f"not running (no live pid in {processes.pid_file(settings, NAME)})"
    try:
        meta = metadata("127.0.0.1", settings.kafka_port)
    except OSError as exc:
        return False, f"pid {pid}, {where} does not answer yet: {exc}"
    if not meta.brokers:
        return False, f"pid {pid}, {where} answers but lists no broker yet"
    return True, (f"pid {pid}, {where}, broker ids {sorted(meta.brokers)}, controller {meta.controller_id}, "
                  f"{len(meta.topics)} topics; log {log_file(settings)}")


# --- topics ---------------------------------------------------------------------------------------

def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create the events, alerts, dead-letter and windows topics, or add partitions up to topic_partitions.

    Idempotent and fast when nothing is to do (one Metadata round trip, no JVM). Returns
    {topic: partitions} as the broker reports them afterwards.
    """
    wanted = (settings.topic_events, settings.topic_alerts, settings.topic_dead_letter, settings.topic_windows)
    host, port = "127.0.0.1", settings.kafka_port
    try:
        before = metadata(host, port).topics
    except OSError as exc:
        raise KafkaError(f"Kafka at {host}:{port} does not answer ({exc}): start it first "
                         f"(make up); its log is {log_file(settings)}") from exc
    _, tools_log4j = _write_log4j(settings)
    bootstrap = f"{host}:{port}"
    for topic in wanted:
        have = before.get(topic)
        if have is None:
            args = ["--create", "--if-not-exists", "--topic", topic, "--partitions", str(settings.topic_partitions),
                    "--replication-factor", "1"]
        elif have < settings.topic_partitions:
            args = ["--alter", "--topic", topic, "--partitions", str(settings.topic_partitions)]
        else:
            continue
        _topic_command(settings, tools_log4j, ["--bootstrap-server", bootstrap, *args])
    deadline = time.monotonic() + 30
    while True:
        after = metadata(host, port).topics
        if all(after.get(t, 0) >= settings.topic_partitions for t in wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    missing = [t for t in wanted if after.get(t, 0) < settings.topic_partitions]
    if missing:
        raise KafkaError(f"topics {missing} still lack {settings.topic_partitions} partitions; "
                         f"see {log_file(settings)}")
    return {t: after[t] for t in wanted}



def delete_topics(settings: Settings, pattern: str) -> None:
    """Delete the topics whose names match the regular expression ``pattern`` (a benchmark's or a
    test run's own topics when it ends: the broker keeps a topic's data for a week otherwise, and
    hundreds of runs filled the disk). Nothing matching is not an error."""
    _, tools_log4j = _write_log4j(settings)
    _topic_command(settings, tools_log4j, ["--bootstrap-server", f"127.0.0.1:{settings.kafka_port}",
                                           "--delete", "--if-exists", "--topic", pattern])


def _topic_command(settings: Settings, tools_log4j: Path, args: list[str]) -> None:
    """Kafka's TopicCommand with ``args``; KafkaError with its output when it fails."""
    proc = subprocess.run(_java_cmd(settings, "org.apache.kafka.tools.TopicCommand", args, tools_log4j, "-Xmx256m"),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaError(f"TopicCommand {' '.join(args[2:])} failed: {(proc.stdout + proc.stderr).strip()[-2000:]}\n"
                         f"broker log: {log_file(settings)}")


# --- a minimal Kafka protocol client (Metadata v1) ------------------------------------------------

@dataclass(frozen=True)
class Metadata:
    brokers: dict[int, tuple[str, int]]
    controller_id: int
    topics: dict[str, int]  # topic -> partition count (topics the broker reports without error)


def metadata(host: str, port: int, topics: tuple[str, ...] | None = None, timeout_s: float = 3.0) -> Metadata:
    """Ask a broker for cluster metadata with the Kafka wire protocol; raise OSError if it cannot.

    Metadata v1 is served by every broker from 0.10 to 4.x. ``topics=None`` asks for all topics;
    prefer it: naming a missing topic in v1 makes a broker with auto-create on (ours) create it.
    """
    correlation = 7
    client = b"patternalarm-stack"
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(_string(t.encode()) for t in topics)
    header = struct.pack(">hhi", 3, 1, correlation) + _string(client)
    request = header + body
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv(sock, 4))[0]
        payload = _recv(sock, size)
    try:
        return _parse_metadata_v1(payload, correlation)
    except (struct.error, UnicodeDecodeError) as exc:
        raise ConnectionError(f"malformed Metadata response from {host}:{port}: {exc}") from exc


def _string(raw: bytes) -> bytes:
    return struct.pack(">h", len(raw)) + raw


def _recv(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks += chunk
    return bytes(chunks)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def skip_int32_array(self) -> None:
        count = self.take(">i")
        self.pos += 4 * max(count, 0)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.pos:self.pos + length].decode()
        self.pos += length
        return value


def _parse_metadata_v1(payload: bytes, correlation: int) -> Metadata:
    r = _Reader(payload)
    if r.take(">i") != correlation:
        raise ConnectionError("Kafka answered another request (correlation id mismatch)")
    brokers: dict[int, tuple[str, int]] = {}
    for _ in range(r.take(">i")):
        node = r.take(">i")
        host = r.string() or ""
        port = r.take(">i")
        r.string()  # rack
        brokers[node] = (host, port)
    controller = r.take(">i")
    topics: dict[str, int] = {}
    for _ in range(r.take(">i")):
        error = r.take(">h")
        name = r.string() or ""
        r.take(">b")  # is_internal
        partitions = r.take(">i")
        for _ in range(partitions):
            r.take(">h")  # error
            r.take(">i")  # partition
            r.take(">i")  # leader
            r.skip_int32_array()  # replicas
            r.skip_int32_array()  # isr
        if error == 0:
            topics[name] = partitions
    return Metadata(brokers, controller, topics)


def main(argv: list[str]) -> int:
    settings = load()
    verb = argv[0] if argv else "status"
    try:
        if verb == "start":
            start(settings)
            print(status(settings)[1])
        elif verb == "stop":
            stop(settings)
        elif verb == "status":
            ok, text = status(settings)
            print(text)
            return 0 if ok else 1
        elif verb == "topics":
            for topic, partitions in ensure_topics(settings).items():
                print(f"{topic}\t{partitions} partitions")
        elif verb == "jars":
            print(jar_folder(settings, "kafka"))
            print(jar_folder(settings, "flink"))
            print(udf_jar(settings))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except KafkaError as exc:
        print(f"kafka: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
