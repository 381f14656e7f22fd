"""TAXII 2.1: each incident update becomes a STIX bundle added to the national center's
collection."""

from __future__ import annotations

import json
from typing import Any

from stix2.exceptions import STIXError
from taxii2client.exceptions import TAXIIServiceException

from socpipe.core.config import ForwardingConfig, TaxiiDestinationConfig
from socpipe.forwarding.delivery import PermanentError, TransientError, UnsendableError
from socpipe.forwarding.destinations.base import Destination
from socpipe.forwarding.http import classify
from socpipe.forwarding.stix import incident_bundle
from socpipe.forwarding.taxii_client import open_collection


class TaxiiDestination(Destination):
    kind = "taxii"

    config: TaxiiDestinationConfig

    def __init__(self, config: TaxiiDestinationConfig, forwarding: ForwardingConfig) -> None:
        super().__init__(config, forwarding)
        self.collection = open_collection(
            config.url,
            config.collection,
            config.tls,
            config.username_env,
            config.password_env,
            config.timeout_secs,
            f"destination {config.name!r}",
        )

    def send(self, incident: dict[str, Any]) -> str:
        try:
            bundle = incident_bundle(
                incident, self.forwarding.province_id, self.forwarding.province_name
            )
        except (KeyError, ValueError, TypeError, STIXError) as error:
            raise UnsendableError(f"cannot express the incident in STIX: {error!r}") from None
        envelope = {"objects": json.loads(bundle.serialize())["objects"]}
        try:
            status = classify(
                lambda: self.collection.add_objects(
                    envelope, wait_for_completion=True, timeout=self.config.timeout_secs
                )
            )
        except TAXIIServiceException as error:
            raise PermanentError(f"TAXII: {error}") from None
        if status.status != "complete":
            raise TransientError(f"TAXII status {status.id} still {status.status}")
        if status.failure_count:
            # Servers report objects they already hold (the shared identities and attack
            # pattern, or a whole re-sent incident) as failures. What matters is that the
            # sighting, the incident itself, is in the collection now.
            self._confirm_stored(bundle.objects, status.failures)
        return (
            f"taxii status {status.id}: {status.success_count} added,"
            f" {status.failure_count} already present"
        )

    def _confirm_stored(self, objects: list[Any], failures: Any) -> None:
        sighting = next(item.id for item in objects if item.type == "sighting")
        try:
            found = classify(lambda: self.collection.get_object(sighting))
        except PermanentError:
            found = {}
        if not found.get("objects"):
            raise PermanentError(f"TAXII refused the incident's objects: {failures}")

    def close(self) -> None:
        self.collection.close()
