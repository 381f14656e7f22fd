"""Real peers the forwarding tests talk to, all on 127.0.0.1: a TAXII 2.1 server (medallion),
an HTTPS webhook that checks client certificates, and rsyslog listening with TLS."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.certificates import Certificates
from tests.conftest import REPO

USER, PASSWORD = "province", "taxii-test-password"
TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")


@dataclass
class TaxiiPeer:
    """medallion with one API root and one read/write collection."""

    folder: Path
    port: int = field(default_factory=free_port)
    collection: str = field(default_factory=lambda: str(uuid.uuid4()))
    process: subprocess.Popen | None = None

    @property
    def api_root(self) -> str:
        return f"http://127.0.0.1:{self.port}/api1/"

    def write_config(self) -> Path:
        data = {
            "/discovery": {
                "title": "National center TAXII",
                "default": self.api_root,
                "api_roots": [self.api_root],
            },
            "api1": {
                "information": {
                    "title": "incidents",
                    "versions": ["application/taxii+json;version=2.1"],
                    "max_content_length": 10485760,
                },
                "status": [],
                "collections": [
                    {
                        "id": self.collection,
                        "title": "Provincial incidents",
                        "can_read": True,
                        "can_write": True,
                        "media_types": ["application/stix+json;version=2.1"],
                        "objects": [],
                        "manifest": [],
                    }
                ],
            },
        }
        (self.folder / "data.json").write_text(json.dumps(data))
        config = {
            "backend": {
                "module": "tests.integration.taxii_backend",
                "module_class": "PersistentMemoryBackend",
                "filename": str(self.folder / "data.json"),
            },
            "users": {USER: PASSWORD},
            "taxii": {"max_page_size": 1000},
        }
        path = self.folder / "medallion.json"
        path.write_text(json.dumps(config))
        return path

    def start(self) -> None:
        config = self.folder / "medallion.json"
        if not config.exists():
            config = self.write_config()
        medallion = shutil.which("medallion", path=str(Path(sys.executable).parent))
        assert medallion, "medallion is not installed in the virtual environment"
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [medallion, "--host", "127.0.0.1", "--port", str(self.port), str(config)],
            cwd=REPO,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "medallion.log").open("ab"),
        )
        try:
            self._wait_ready()
        except TimeoutError:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        wait_until(
            lambda: (
                requests.get(
                    f"http://127.0.0.1:{self.port}/taxii2/",
                    auth=(USER, PASSWORD),
                    headers={"Accept": TAXII_MEDIA_TYPE},
                    timeout=2,
                ).ok
            ),
            "medallion",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
            self.process = None

    def objects(self, kind: str | None = None) -> list[dict]:
        """Every object version the server stored (read from its data file, without the
        server's own bookkeeping fields): versions too, so a duplicate would show."""
        data = json.loads((self.folder / "data.json").read_text())
        stored = data["api1"]["collections"][0]["objects"]
        return [
            {key: value for key, value in item.items() if not key.startswith("_")}
            for item in stored
            if kind is None or item["type"] == kind
        ]

    def add_raw(self, objects: list[dict]) -> None:
        response = requests.post(
            f"{self.api_root}collections/{self.collection}/objects/",
            json={"objects": objects},
            auth=(USER, PASSWORD),
            headers={"Accept": TAXII_MEDIA_TYPE, "Content-Type": TAXII_MEDIA_TYPE},
            timeout=10,
        )
        response.raise_for_status()


class WebhookPeer:
    """An HTTPS server requiring a client certificate; answers with ``status`` and records
    every request it accepted (body and headers)."""

    def __init__(self, certificates: Certificates, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = status
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                peer.received.append({"headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(peer.status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates.path("server.pem"), certificates.path("server.key"))
        context.load_verify_locations(certificates.path("ca.pem"))
        context.verify_mode = ssl.CERT_REQUIRED
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SERVICES = Path(os.environ.get("SOCPIPE_SERVICES_DIR", "/var/lib/socpipe-services"))
RSYSLOG_ROOT = SERVICES / "rsyslog" / "root"


class RsyslogPeer:
    """rsyslogd (unpacked by scripts/services.sh) with a TLS listener that requires a client
    certificate from the test CA, writing every message it receives to a file."""

    def __init__(self, folder: Path, certificates: Certificates) -> None:
        binary = RSYSLOG_ROOT / "usr" / "sbin" / "rsyslogd"
        assert binary.exists(), f"{binary} missing: run scripts/services.sh up rsyslog"
        self.port = free_port()
        self.received = folder / "received.log"
        libraries = RSYSLOG_ROOT / "usr" / "lib" / "x86_64-linux-gnu"
        config = folder / "rsyslog.conf"
        config.write_text(
            f'global(workDirectory="{folder}" defaultNetstreamDriver="ossl"\n'
            f'       defaultNetstreamDriverCAFile="{certificates.path("ca.pem")}"\n'
            f'       defaultNetstreamDriverCertFile="{certificates.path("server.pem")}"\n'
            f'       defaultNetstreamDriverKeyFile="{certificates.path("server.key")}")\n'
            'module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"\n'
            '       streamDriver.authMode="x509/certvalid")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.port}")\n'
            'template(name="raw" type="string" string="%rawmsg%\\n")\n'
            f'action(type="omfile" file="{self.received}" template="raw")\n'
        )
        environment = {**os.environ, "LD_LIBRARY_PATH": str(libraries)}
        self.process = subprocess.Popen(
            [
                str(binary),
                "-n",
                "-f",
                str(config),
                "-i",
                str(folder / "rsyslogd.pid"),
                "-M",
                str(libraries / "rsyslog"),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "rsyslogd.log").open("ab"),
        )

        def listening() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(folder / 'rsyslogd.log').read_text()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        try:
            wait_until(listening, "rsyslogd")
        except (TimeoutError, RuntimeError):
            self.stop()
            raise

    def lines(self) -> list[str]:
        if not self.received.exists():
            return []
        return self.received.read_text(encoding="utf-8").splitlines()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
