"""End to end: a suppression made in the browser stops the daemon's detect stage raising a
matching event that arrives through Kafka afterwards, is counted on its page, and stops
applying once it has expired. Real Kafka, Elasticsearch, daemon (detect and index stages),
console and Chromium."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, expect, sync_playwright
from prometheus_client import REGISTRY

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core.config import Config
from socpipe.daemon import runner
from socpipe.detectors.alert import alert_id
from socpipe.detectors.suppression import iso
from tests.integration.conftest import wait_for
from tests.integration.console_app import (
    AGENCY_A,
    PASSWORD,
    RunningConsole,
    add_user,
    running_console,
)
from tests.integration.test_console_browser import CHROMIUM, CHROMIUM_FLAGS, shot

CONTEXT = ParseContext(
    agency_id=AGENCY_A, agency_name=None, reference_time=datetime(2026, 3, 10, tzinfo=UTC)
)
ROOT_LOGIN = "SSH Login As Root Accepted"


def root_login(number: int, source: str) -> dict[str, Any]:
    line = f"Mar  3 10:{number:02d}:00 web01 sshd[23{number:02d}]: Accepted password for root from {source} port 51199 ssh2"
    event, _ = parse_detected(line, CONTEXT)
    event["event.id"] = f"suppression-test-{number}"
    return event


def publish(config: Config, *events: dict[str, Any]) -> None:
    publisher = EventPublisher(config.kafka, "test")
    for event in events:
        publisher.publish(event)
    publisher.close()


def alerts_by_id(es: Elasticsearch, config: Config) -> dict[str, dict[str, Any]]:
    index = config.elasticsearch.alerts_index
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=1000)["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def loaded_suppressions() -> float | None:
    return REGISTRY.get_sample_value("socpipe_suppressions_loaded")


@pytest.fixture
def pipeline(config: Config) -> Iterator[Config]:
    """The daemon's detect and index stages, reloading suppressions every second."""
    configured = replace(config, stages=replace(config.stages, suppressions_reload_secs=1.0))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(configured, ["detect", "index"], stop))
    thread.start()
    yield configured
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the daemon did not stop within 60 s of being asked"


@pytest.fixture
def app(pipeline: Config) -> Iterator[RunningConsole]:
    add_user(pipeline, "central", "central-analyst")
    with running_console(pipeline) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def test_suppression_from_the_browser_stops_the_detect_stage_until_it_expires(
    pipeline: Config, app: RunningConsole, browser: Browser, es: Elasticsearch
) -> None:
    config = pipeline
    first = root_login(1, "203.0.113.50")
    publish(config, first)
    rule_id = wait_for(
        lambda: next(
            (
                a["rule.id"]
                for a in alerts_by_id(es, config).values()
                if a["rule.name"] == ROOT_LOGIN
            ),
            None,
        ),
        timeout=180,
        what="the first root-login alert",
    )
    first_alert = alert_id(rule_id, first)
    raised = alerts_by_id(es, config)[first_alert]
    assert raised["alert.detected"] >= raised["alert.first_seen"]  # stamped when detected

    page = browser.new_context(base_url=app.url, viewport={"width": 1360, "height": 860}).new_page()
    page.goto("/login")
    page.fill("input[name=username]", "central")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.goto(f"/alerts/{first_alert}")
    page.click("#suppress-similar")
    # Narrow the suggestion to the source and host (the user stays free to vary).
    for box in page.locator("#suppress-form input[name=use]").all():
        field = page.locator(f"input[name=value_{box.get_attribute('value')}]").get_attribute(
            "data-field"
        )
        if field not in ("source.ip", "host.name", "organization.id"):
            box.uncheck()
    page.fill("#suppress-reason", "The agency's jump host logs in as root by design")
    page.select_option("#suppress-days", "7")
    shot(page, "suppress-similar")
    page.click("#suppress-save")
    expect(page).to_have_url(re.compile(r"/suppressions$"))
    row = page.locator("#suppressions tbody tr").first
    expect(row).to_contain_text("source.ip = 203.0.113.50")
    suppression_id = row.get_attribute("data-suppression")
    assert suppression_id, "the suppressions page names each row's suppression"
    wait_for(lambda: loaded_suppressions() == 1, timeout=60, what="the detect stage to load it")

    # Arriving afterwards: the same source is suppressed, another source is raised.
    suppressed, control = root_login(2, "203.0.113.50"), root_login(3, "203.0.113.51")
    publish(config, suppressed, control)
    wait_for(
        lambda: alert_id(rule_id, control) in alerts_by_id(es, config),
        timeout=120,
        what="the control alert",
    )
    # Same host, so same partition and order: the suppressed event was handled before.
    assert alert_id(rule_id, suppressed) not in alerts_by_id(es, config)
    suppressions_index = f"{config.elasticsearch.console_index_prefix}suppressions"
    counted = wait_for(
        lambda: (
            (doc := es.get(index=suppressions_index, id=suppression_id)["_source"])["hits"] == 1
            and doc
        ),
        timeout=60,
        what="the suppressed alert to be counted",
    )
    assert counted["last_hit"]
    es.indices.refresh(index=suppressions_index)  # the page searches; searches see refreshes
    page.reload()
    expect(page.locator("#suppressions tbody tr").first.locator("td.hits")).to_have_text("1")
    shot(page, "suppressions")

    # Expiry: no test can wait days, so the stored expiry is moved to a moment from now, as
    # time would; the detect stage drops it at its next reload.
    es.update(
        index=suppressions_index,
        id=suppression_id,
        doc={"expires": iso(datetime.now(UTC) + timedelta(seconds=2))},
        refresh=True,
    )
    wait_for(lambda: loaded_suppressions() == 0, timeout=60, what="the expired one to be dropped")
    after = root_login(4, "203.0.113.50")
    publish(config, after)
    wait_for(
        lambda: alert_id(rule_id, after) in alerts_by_id(es, config),
        timeout=120,
        what="an alert once the suppression expired",
    )
    page.goto("/suppressions?all=1")
    expect(page.locator(f"tr[data-suppression='{suppression_id}']")).to_have_class("ended")


def test_counts_written_by_several_detect_processes_add_up(
    config: Config, es: Elasticsearch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from socpipe.daemon.suppression_feed import SuppressionPoller, load_suppressions, write_hits
    from socpipe.detectors.alert import Alert
    from socpipe.detectors.suppression import Suppression, SuppressionHits, Suppressor
    from socpipe.sinks.elasticsearch import connect

    index = f"{config.elasticsearch.console_index_prefix}suppressions"
    now = datetime.now(UTC)
    document = Suppression(
        "s1", "r1", (("source.ip", "10.0.0.5"),), now, now + timedelta(days=1)
    ).to_dict()
    del document["id"]
    es.index(index=index, id="s1", document={**document, "hits": 0}, refresh=True)
    assert [s.id for s in load_suppressions(es, index, now)] == ["s1"]

    def detect_process(rounds: int) -> None:
        """One detect process: its own client, poller and counts, flushed as the poller does
        (counts a contended write could not place wait for the next flush)."""
        suppressor = Suppressor([Suppression.from_dict(document, "s1")])
        poller = SuppressionPoller(
            connect(config.elasticsearch), index, suppressor, 1.0, threading.Event()
        )
        for _ in range(rounds):
            for _ in range(5):
                assert suppressor.match(matching, datetime.now(UTC)) is not None
            poller.flush()
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while poller.unwritten and datetime.now(UTC) < deadline:
            poller.flush()
        assert poller.unwritten == 0

    matching = Alert(
        id="a",
        rule=type("Rule", (), {"id": "r1"})(),
        timestamp="t",
        agency="so-a",  # type: ignore[arg-type]
        entities={"source.ip": "10.0.0.5"},
        events=(),
        first_seen="t",
        last_seen="t",
    )
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(detect_process, [10] * 4))
    assert es.get(index=index, id="s1")["_source"]["hits"] == 4 * 10 * 5
    # Expired ones are not loaded; a deleted one's counts are dropped, not retried forever.
    assert load_suppressions(es, index, now + timedelta(days=2)) == []
    assert write_hits(es, index, {"gone": SuppressionHits(1, now)}) == {}
