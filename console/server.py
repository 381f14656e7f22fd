"""Serving the console: uvicorn on the configured address, HTTPS when TLS files are given."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from socpipe.console.elastic import connect_async
from socpipe.console.settings import ConsoleSettings
from socpipe.console.web import Console, create_app
from socpipe.core.config import Config


def build_app(config: Config, settings: ConsoleSettings) -> FastAPI:
    client = connect_async(config.elasticsearch)
    return create_app(Console(settings, config, client))


def serve(config: Config, settings: ConsoleSettings) -> None:
    """Run until interrupted. Behind a load balancer run several: all state is in
    Elasticsearch (sessions included), so any process can answer any request."""
    uvicorn.run(
        build_app(config, settings),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        server_header=False,
        log_level="info",
    )
