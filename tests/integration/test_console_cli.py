"""The console's commands as a user runs them: `socpipe users ...`, `socpipe alerts ...` and
`socpipe console` (over TLS), each as its own process against the real Elasticsearch."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch

from socpipe.core.config import Config
from tests.certificates import Certificates
from tests.conftest import REPO
from tests.integration.conftest import write_config
from tests.integration.console_app import AGENCY_A, PASSWORD, scan_samples


def socpipe(config_file: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "pipeline.py"), *args, "--config", str(config_file)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.fixture
def config_file(config: Config, tmp_path: Path) -> Path:
    return write_config(config, tmp_path / "socpipe.yml")


def test_users_commands(config_file: Path, es: Elasticsearch, config: Config) -> None:
    added = socpipe(
        config_file,
        "users",
        "add",
        "ana",
        "--role",
        "agency-analyst",
        "--agency",
        AGENCY_A,
        stdin=f"{PASSWORD}\n",
    )
    assert added.returncode == 0, added.stderr
    assert "user ana added (agency-analyst, so-tttt)" in added.stdout
    again = socpipe(
        config_file,
        "users",
        "add",
        "ana",
        "--role",
        "agency-analyst",
        "--agency",
        AGENCY_A,
        stdin=f"{PASSWORD}\n",
    )
    assert again.returncode == 1 and "exists already" in again.stderr
    no_agency = socpipe(
        config_file, "users", "add", "bob", "--role", "agency-viewer", stdin=f"{PASSWORD}\n"
    )
    assert no_agency.returncode == 1 and "needs --agency" in no_agency.stderr
    short = socpipe(
        config_file, "users", "add", "bob", "--role", "central-auditor", stdin="short\n"
    )
    assert short.returncode == 1 and "at least 12" in short.stderr
    listed = socpipe(config_file, "users", "list")
    assert listed.stdout.split("\n")[1].split() == ["ana", "agency-analyst", AGENCY_A, "active"]
    stored = es.get(index=f"{config.elasticsearch.console_index_prefix}users", id="ana")["_source"]
    assert stored["password_hash"].startswith("$argon2id$") and PASSWORD not in json.dumps(stored)
    assert (
        socpipe(config_file, "users", "passwd", "ana", stdin="another long password\n").returncode
        == 0
    )
    disabled = socpipe(config_file, "users", "disable", "ana")
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    assert "disabled" in socpipe(config_file, "users", "list").stdout
    assert socpipe(config_file, "users", "disable", "nobody").returncode == 1


def test_alerts_commands(
    config_file: Path, es: Elasticsearch, config: Config, tmp_path: Path
) -> None:
    scan = scan_samples(tmp_path, AGENCY_A)
    total = len(scan.read_text().splitlines())
    broken = tmp_path / "broken.jsonl"
    broken.write_text(scan.read_text().splitlines()[0] + '\nnot json\n{"rule.id": "x"}\n')
    loaded = socpipe(config_file, "alerts", "load", str(scan))
    assert loaded.returncode == 0, loaded.stderr
    assert f"{total} alerts loaded, 0 already present, 0 lines skipped" in loaded.stdout
    partial = socpipe(config_file, "alerts", "load", str(broken))
    assert f"{broken}:2: not JSON" in partial.stdout
    assert f"{broken}:3: not an alert (no alert.id, @timestamp)" in partial.stdout
    assert "0 alerts loaded, 1 already present, 2 lines skipped" in partial.stdout
    socpipe(
        config_file,
        "users",
        "add",
        "ana",
        "--role",
        "agency-analyst",
        "--agency",
        AGENCY_A,
        stdin=f"{PASSWORD}\n",
    )
    listed = socpipe(config_file, "alerts", "list", "--level", "critical", "--user", "ana")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.strip().split("\n")
    assert rows[-1].endswith("alerts") and all(" critical " in row for row in rows[1:-1])
    alert_id = rows[1].split()[-1]
    shown = json.loads(socpipe(config_file, "alerts", "show", alert_id).stdout)
    assert shown["alert.id"] == alert_id and ":" in shown["version"]
    anonymous = socpipe(config_file, "alerts", "set", alert_id, "--status", "acknowledged")
    assert anonymous.returncode == 1 and "--user" in anonymous.stderr
    closing = socpipe(config_file, "alerts", "set", alert_id, "--status", "closed", "--user", "ana")
    assert closing.returncode == 1 and "needs a resolution" in closing.stderr
    done = socpipe(
        config_file,
        "alerts",
        "set",
        alert_id,
        "--status",
        "closed",
        "--resolution",
        "benign",
        "--note",
        "hunt finding, known admin",
        "--user",
        "ana",
        "--version",
        shown["version"],
    )
    assert done.returncode == 0, done.stderr
    stale = socpipe(
        config_file,
        "alerts",
        "set",
        alert_id,
        "--assignee",
        "ana",
        "--user",
        "ana",
        "--version",
        shown["version"],
    )
    assert stale.returncode == 1 and "changed by ana at" in stale.stderr
    source = es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]
    assert (source["alert.status"], source["alert.resolution"]) == ("closed", "benign")
    assert source["alert.notes"][0]["text"] == "hunt finding, known admin"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tls_console(config_file: Path, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    certificates = Certificates(tmp_path)
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "pipeline.py"),
            "console",
            "--config",
            str(config_file),
            "--listen",
            f"127.0.0.1:{port}",
            "--tls-cert",
            certificates.path("server.pem"),
            "--tls-key",
            certificates.path("server.key"),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=certificates.path("ca.pem"))
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                httpx.get(f"{url}/login", verify=trust, timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"socpipe console did not start: {process.stderr.read() if process.stderr else ''}"
                    )
                time.sleep(0.2)
        yield url, trust
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_console_serves_https_with_secure_cookies(
    tls_console: tuple[str, str], config_file: Path
) -> None:
    url, ca = tls_console
    socpipe(
        config_file, "users", "add", "central", "--role", "central-analyst", stdin=f"{PASSWORD}\n"
    )
    with httpx.Client(base_url=url, verify=ca) as client:
        page = client.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "Secure" in page.headers["set-cookie"]
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = client.post(
            "/login", data={"username": "central", "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 303
        assert (
            "Secure" in response.headers["set-cookie"]
            and "HttpOnly" in response.headers["set-cookie"]
        )
        assert client.get("/api/v1/session").json()["user"] == "central"
