"""A taxii2-client collection set up the way socpipe needs it (timeouts, the configured CA),
for publishing alerts and for polling indicators alike."""

from __future__ import annotations

from taxii2client.v21 import Collection

from socpipe.core.config import TlsConfig, secret_from_env
from socpipe.forwarding.http import SessionSettingsAdapter
from socpipe.forwarding.tls import client_cert, tls_verify


def open_collection(
    api_root: str,
    collection_id: str,
    tls: TlsConfig,
    username_env: str | None,
    password_env: str | None,
    timeout: float,
    owner: str,
) -> Collection:
    root = api_root if api_root.endswith("/") else api_root + "/"
    verify = tls_verify(tls, owner)
    collection = Collection(
        f"{root}collections/{collection_id}/",
        user=secret_from_env(username_env) if username_env else None,
        password=secret_from_env(password_env) if password_env else None,
        verify=verify,
        cert=client_cert(tls),
    )
    # taxii2-client keeps its requests session on the connection object it builds.
    session = collection._conn.session
    for scheme in ("http://", "https://"):
        session.mount(scheme, SessionSettingsAdapter(timeout, verify))
    return collection
