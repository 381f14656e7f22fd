"""`socpipe collect` started while Kafka is unreachable: it starts, keeps what arrives (the
syslog journal, the followed files' positions), says so once, and catches up when Kafka
returns.

The shared Kafka is never stopped: the collectors reach it through a gate, a TCP port that
refuses connections until the test opens it and then forwards to the real broker (the
broker's metadata names its own address, so only bootstrapping goes through the gate).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from socpipe.core.config import Config
from tests.conftest import REPO
from tests.integration.conftest import read_topic, wait_for, write_config

SSHD = "<38>Mar  3 10:00:00 web01 sshd[1]: Failed password for user{n} from 10.0.0.1 port 22 ssh2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Gate:
    """A port that refuses connections until ``open``, then forwards them to ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None

    def open(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            end.close()


@contextmanager
def collector(config: Config, folder: Path, gate: Gate, *arguments: str) -> Iterator[Collector]:
    """``socpipe collect ...`` as its own process, bootstrapping through ``gate``."""
    gated = replace(
        config, kafka=replace(config.kafka, bootstrap_servers=[f"127.0.0.1:{gate.port}"])
    )
    config_file = write_config(gated, folder / "socpipe.yml")
    metrics_port = free_port()
    log = folder / "collector.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "pipeline.py"),
                "collect",
                *arguments,
                "--agency",
                "so-tttt",
                "--timezone",
                "UTC",
                "--config",
                str(config_file),
                "--metrics-port",
                str(metrics_port),
            ],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Collector(process, log, metrics_port)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Collector:
    def __init__(self, process: subprocess.Popen, log: Path, metrics_port: int) -> None:
        self.process = process
        self.log = log
        self.metrics_port = metrics_port

    def output(self) -> str:
        return self.log.read_text()

    def metric(self, name: str, collector: str) -> float | None:
        """A sample from the collector's /metrics, None while it does not serve it yet."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
            ) as response:
                text = response.read().decode()
        except OSError:
            return None
        match = re.search(rf'^{name}{{collector="{collector}"}} (\S+)$', text, re.MULTILINE)
        return float(match.group(1)) if match else None

    def alive(self) -> bool:
        return self.process.poll() is None


def test_syslog_collector_started_without_kafka_journals_and_catches_up(
    config: Config, tmp_path: Path
) -> None:
    gate = Gate(("127.0.0.1", 9092))
    try:
        with collector(
            config, tmp_path, gate, "syslog", "--tcp", "127.0.0.1:0", "--spool", str(tmp_path / "j")
        ) as running:
            found = wait_for(
                lambda: re.search(r"syslog tcp on \('127.0.0.1', (\d+)\)", running.output()),
                timeout=30,
                what="the listener to start while Kafka is unreachable",
            )
            with socket.create_connection(("127.0.0.1", int(found.group(1)))) as client:
                client.sendall("".join(SSHD.format(n=n) + "\n" for n in range(20)).encode())
            wait_for(
                lambda: running.metric("socpipe_collector_kafka_up", "syslog") == 0.0,
                timeout=60,
                what="the collector to report Kafka as down",
            )
            assert running.alive()
            assert (running.metric("socpipe_collector_buffered_bytes", "syslog") or 0) > 0
            gate.open()
            records = read_topic(config, config.kafka.topics.events, expected=20, timeout=120)
            wait_for(
                lambda: running.metric("socpipe_collector_kafka_up", "syslog") == 1.0,
                timeout=30,
                what="the collector to report Kafka as back",
            )
            assert running.alive()
        assert running.process.returncode == 0, running.output()
    finally:
        gate.close()
    assert sorted(record["user.name"] for record in records) == sorted(
        f"user{n}" for n in range(20)
    )
    output = running.output()
    # One line when Kafka is found away, one when it is back: not a line per retry.
    assert output.count("kafka unreachable collector=syslog") == 1, output
    assert output.count("kafka reachable again collector=syslog") == 1, output


def test_file_collector_started_without_kafka_keeps_its_positions_and_catches_up(
    config: Config, tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_text("".join(SSHD.format(n=n)[4:] + "\n" for n in range(30)))
    state = tmp_path / "state.json"
    gate = Gate(("127.0.0.1", 9092))
    try:
        with collector(
            config, tmp_path, gate, "file", "--glob", str(log), "--state", str(state)
        ) as running:
            wait_for(
                lambda: running.metric("socpipe_collector_kafka_up", "file") == 0.0,
                timeout=60,
                what="the follower to report Kafka as down",
            )
            assert running.alive()
            assert not state.exists(), "no position may be saved before Kafka acknowledged"
            with log.open("a") as handle:
                handle.write("".join(SSHD.format(n=n)[4:] + "\n" for n in range(30, 40)))
            gate.open()
            records = read_topic(config, config.kafka.topics.events, expected=40, timeout=120)
            wait_for(state.exists, timeout=30, what="the positions to be saved")
        assert running.process.returncode == 0, running.output()
    finally:
        gate.close()
    assert sorted(record["user.name"] for record in records) == sorted(
        f"user{n}" for n in range(40)
    )
    assert running.output().count("kafka unreachable collector=file") == 1
