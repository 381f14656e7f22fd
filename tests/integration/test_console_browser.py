"""The console in a real browser: the system Chromium driven by Playwright, against the real
server and Elasticsearch. Each test saves a screenshot, under build/screenshots/ (a test run
leaves the checkout as it was), or under docs/screenshots/, which the README shows, with
SOCPIPE_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, FloatRect, Page, expect, sync_playwright

from socpipe.console import cli
from socpipe.core.config import Config
from tests.conftest import REPO
from tests.integration.console_app import (
    AGENCY_A,
    AGENCY_B,
    PASSWORD,
    RunningConsole,
    add_user,
    load,
    off_loop,
    running_console,
    scan_samples,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / (
    "docs/screenshots"
    if os.environ.get("SOCPIPE_UPDATE_SCREENSHOTS") == "1"
    else "build/screenshots"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (make test does)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scans")
    return {agency: scan_samples(folder, agency) for agency in (AGENCY_A, AGENCY_B)}


@pytest.fixture
def app(config: Config, scans: dict[str, Path]) -> Iterator[RunningConsole]:
    for path in scans.values():
        load(config, path)
    add_user(config, "central", "central-analyst")
    add_user(config, "ana", "agency-analyst", AGENCY_A)
    with running_console(config) as running:
        yield running


def new_page(browser: Browser, app: RunningConsole) -> Page:
    context = browser.new_context(base_url=app.url, viewport={"width": 1360, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.errors = errors  # type: ignore[attr-defined]
    return page


def log_in(page: Page, name: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")


def shot(page: Page, name: str) -> None:
    """The visible part of the page, without the empty space below a short one."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1360, "height": 860}
    content = page.evaluate("Math.ceil(document.body.getBoundingClientRect().height) + 16")
    height = min(int(content), size["height"])
    clip: FloatRect = {"x": 0, "y": 0, "width": size["width"], "height": height}
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), clip=clip)


def no_csp_violations(page: Page) -> None:
    """The Content-Security-Policy forbids inline script and style: nothing may trip it."""
    violations = [e for e in page.errors if "Content Security Policy" in e]  # type: ignore[attr-defined]
    assert violations == []


def test_login_wrong_password_logout(browser: Browser, app: RunningConsole) -> None:
    page = new_page(browser, app)
    page.goto("/alerts")
    expect(page).to_have_url(re.compile(r"/login\?next=/alerts$"))
    log_in(page, "ana", "a wrong password")
    expect(page.get_by_role("alert")).to_have_text("wrong user name or password")
    shot(page, "login-failed")
    log_in(page, "ana")
    expect(page).to_have_url(re.compile(r"/alerts$"))
    expect(page.locator("#whoami")).to_have_text("ana")
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/alerts")
    expect(page).to_have_url(re.compile(r"/login"))
    no_csp_violations(page)


def test_agency_analyst_sees_their_agency_only(
    browser: Browser, app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    other = es.search(
        index=config.elasticsearch.alerts_index,
        query={"term": {"organization.id": AGENCY_B}},
        size=1,
    )["hits"]["hits"][0]["_id"]
    page = new_page(browser, app)
    log_in(page, "ana")
    rows = page.locator("#queue tbody tr")
    expect(rows.first).to_be_visible()
    agencies = set(page.locator("#queue tbody tr td:nth-child(6)").all_inner_texts())
    assert agencies == {AGENCY_A}
    shot(page, "queue-agency-analyst")
    response = page.goto(f"/alerts/{other}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    page.goto("/entities/source.ip/198.51.100.44")
    expect(page.locator("#entity-timeline")).to_contain_text(AGENCY_A)
    expect(page.locator("#entity-timeline")).not_to_contain_text(AGENCY_B)


def test_queue_filters_groups_and_hides_closed(browser: Browser, app: RunningConsole) -> None:
    page = new_page(browser, app)
    log_in(page, "central")
    total = int(page.locator("#total").inner_text())
    assert total > 100  # two agencies' scans
    page.fill("#q", f"organization.id:{AGENCY_B} and rule.level:high")
    page.click("#apply-filter")
    expect(page).to_have_url(re.compile(r"q=organization\.id"))
    expect(page.locator("#total")).not_to_have_text(str(total))
    assert set(page.locator("#queue tbody tr td:nth-child(4)").all_inner_texts()) == {"high"}
    page.go_back()  # the filter changed the URL; Back shows the whole queue again
    expect(page.locator("#total")).to_have_text(str(total))
    expect(page.locator("#filters")).to_have_count(1)
    page.go_forward()
    expect(page.locator("#total")).not_to_have_text(str(total))
    page.fill("#q", "nosuch.field:1")
    page.click("#apply-filter")
    expect(page.locator("#results .flash.error")).to_contain_text("unknown field 'nosuch.field'")
    page.goto("/alerts")
    page.select_option("#group", "rule")
    expect(page.locator("#groups")).to_be_visible()
    shot(page, "queue-grouped-by-rule")
    counts = [int(n) for n in page.locator("#groups td.num").all_inner_texts()]
    assert sum(counts) == total and counts == sorted(counts, reverse=True)
    no_csp_violations(page)


def test_bulk_close_with_resolution(
    browser: Browser, app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    page = new_page(browser, app)
    log_in(page, "central")
    page.goto(f"/alerts?agency={AGENCY_A}")
    before = int(page.locator("#total").inner_text())
    chosen = [page.locator("#queue tbody tr").nth(i).get_attribute("data-alert") for i in range(3)]
    for i in range(3):
        page.locator("#queue tbody tr").nth(i).locator("input[name=alert]").check()
    page.select_option("#bulk-status", "closed")
    page.select_option("#bulk-resolution", "true_positive")
    page.fill("#bulk-note", "Confirmed with the agency's admin")
    page.click("#bulk-apply")
    expect(page.locator("#bulk-message")).to_have_text("3 changed")
    expect(page.locator("#total")).to_have_text(str(before - 3))
    shot(page, "queue-bulk-closed")
    page.locator("#show-closed").check()
    expect(page.locator("#total")).to_have_text(str(before))
    for alert_id in chosen:
        source = es.get(index=config.elasticsearch.alerts_index, id=str(alert_id))["_source"]
        assert (source["alert.status"], source["alert.resolution"]) == ("closed", "true_positive")
        assert source["alert.notes"][-1]["text"] == "Confirmed with the agency's admin"


def test_note_shows_in_history_and_conflict_is_shown(
    browser: Browser, app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    alert_id = es.search(
        index=config.elasticsearch.alerts_index,
        query={
            "bool": {
                "filter": [
                    {"term": {"organization.id": AGENCY_A}},
                    {"exists": {"field": "source.ip"}},
                ]
            }
        },
        size=1,
    )["hits"]["hits"][0]["_id"]
    first, second = new_page(browser, app), new_page(browser, app)
    log_in(first, "ana")
    log_in(second, "central")
    first.goto(f"/alerts/{alert_id}")
    second.goto(f"/alerts/{alert_id}")
    first.fill(
        "#triage-note", "Source is the agency's vulnerability scanner; asked them to confirm."
    )
    first.select_option("#triage-status", "acknowledged")
    first.click("#triage-save")
    expect(first.locator("#history")).to_contain_text("asked them to confirm")
    expect(first.locator("#history")).to_contain_text("status: new → acknowledged")
    expect(first.locator("#alert-status")).to_contain_text("acknowledged")
    shot(first, "alert-with-history")
    # The second analyst still has the page as it was: their save is refused, not lost.
    second.select_option("#triage-status", "in_progress")
    second.click("#triage-save")
    expect(second.locator("#conflict")).to_contain_text(re.compile(r"changed by ana at 20\d\d-"))
    shot(second, "alert-conflict")
    source = es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]
    assert source["alert.status"] == "acknowledged"
    # Reloaded, the second analyst's change goes through.
    second.goto(f"/alerts/{alert_id}")
    second.select_option("#triage-status", "in_progress")
    second.click("#triage-save")
    expect(second.locator("#alert-status")).to_contain_text("in progress")


def test_disabled_users_session_stops_working(
    browser: Browser, app: RunningConsole, config: Config
) -> None:
    page = new_page(browser, app)
    log_in(page, "ana")
    expect(page.locator("#whoami")).to_have_text("ana")
    off_loop(cli.users_disable, config, "ana")
    page.reload()
    expect(page).to_have_url(re.compile(r"/login"))
