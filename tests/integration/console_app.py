"""The console for integration tests: a real uvicorn server in a thread on a free loopback port,
with the test's own indices (from the `config` fixture), users made through the CLI code and
alerts loaded from real scans of samples/ for two agencies."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from socpipe.console import cli
from socpipe.console.server import build_app
from socpipe.console.settings import console_settings
from socpipe.core.config import Config
from socpipe.scanner.run import ScanOptions, run_scan
from tests.conftest import REPO

T = TypeVar("T")
PASSWORD = "correct horse battery"
AGENCY_A = "so-tttt"
AGENCY_B = "so-yte"


@dataclass
class RunningConsole:
    url: str
    config: Config
    server: uvicorn.Server

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)


@contextmanager
def running_console(config: Config) -> Iterator[RunningConsole]:
    """The console app served until the block ends; returns once it answers."""
    settings = console_settings(config, listen="127.0.0.1:0")
    app = build_app(config, settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    sock = socket.socket()
    # Accepted connections inherit it: without it, a kept-alive connection waits 40 ms on
    # delayed ACKs for every answer written in two parts (uvicorn's own listener sets it).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the console did not start within 30 s")
        time.sleep(0.05)
    try:
        yield RunningConsole(f"http://127.0.0.1:{port}", config, server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run a CLI function (which runs its own asyncio loop) in a worker thread: Playwright's
    synchronous API keeps a loop running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


def add_user(config: Config, name: str, role: str, agency: str | None = None) -> str:
    off_loop(cli.users_add, config, name, role, agency, PASSWORD)
    return name


def scan_samples(folder: Path, agency: str) -> Path:
    """The alerts of a real scan of samples/ as one agency (what `socpipe scan --out` writes)."""
    out = folder / f"alerts-{agency}.jsonl"
    if not out.exists():
        run_scan(ScanOptions(paths=[REPO / "samples"], agency_id=agency, out=out, progress=False))
    return out


def load(config: Config, path: Path) -> str:
    return off_loop(cli.alerts_load, config, path)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the login form (fetching its CSRF cookie first), as a browser does."""
    page = client.get("/login")
    form = page.text.split('id="login-form"', 1)[1]
    token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": "/alerts"},
    )


def csrf_of(client: httpx.Client) -> str:
    return str(client.get("/api/v1/session").json()["csrf_token"])
