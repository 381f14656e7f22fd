"""The console over HTTP against the real Elasticsearch: logins, sessions, CSRF, agency scope
(tried to be broken), triage with its guard and audit, exports. Browser tests are in
test_console_browser.py; these use the same server through httpx, as a script would."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from socpipe.console import cli
from socpipe.console.triage import Change
from socpipe.core.config import Config
from socpipe.sinks.elasticsearch import Document, ElasticsearchSink
from tests.integration.console_app import (
    AGENCY_A,
    AGENCY_B,
    PASSWORD,
    RunningConsole,
    add_user,
    csrf_of,
    load,
    login,
    running_console,
    scan_samples,
)


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scans")
    return {agency: scan_samples(folder, agency) for agency in (AGENCY_A, AGENCY_B)}


@pytest.fixture
def app(config: Config, scans: dict[str, Path]) -> Iterator[RunningConsole]:
    for path in scans.values():
        load(config, path)
    add_user(config, "central", "central-analyst")
    add_user(config, "auditor", "central-auditor")
    add_user(config, "ana", "agency-analyst", AGENCY_A)
    add_user(config, "viewer", "agency-viewer", AGENCY_A)
    add_user(config, "bob", "agency-analyst", AGENCY_B)
    with running_console(config) as running:
        yield running


def _ids(es: Elasticsearch, config: Config, agency: str) -> list[str]:
    es.indices.refresh(index=config.elasticsearch.alerts_index)
    response = es.search(
        index=config.elasticsearch.alerts_index,
        query={"term": {"organization.id": agency}},
        size=1000,
    )
    return [hit["_id"] for hit in response["hits"]["hits"]]


def test_login_wrong_password_and_logout(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    with app.client() as client:
        assert client.get("/alerts").status_code == 303  # to the login page
        wrong = login(client, "ana", "not the password at all")
        assert wrong.status_code == 401
        assert "wrong user name or password" in wrong.text
        assert client.get("/api/v1/session").status_code == 401
        unknown = login(client, "nobody", PASSWORD)
        assert unknown.status_code == 401
        ok = login(client, "ana", PASSWORD)
        assert ok.status_code == 303 and ok.headers["location"] == "/alerts"
        # Logging in again while signed in (another user, a bookmark) works too.
        assert login(client, "ana", PASSWORD).status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert client.get("/alerts").status_code == 200
        token = csrf_of(client)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/alerts").status_code == 303
    es.indices.refresh(index=f"{config.elasticsearch.console_index_prefix}audit")
    actions = [
        hit["_source"]["action"]
        for hit in es.search(
            index=f"{config.elasticsearch.console_index_prefix}audit",
            query={"terms": {"target": ["ana", "nobody"]}},
            size=100,
        )["hits"]["hits"]
    ]
    assert actions.count("login_failed") == 2
    assert actions.count("login") == 2
    assert actions.count("logout") == 1
    sessions = f"{config.elasticsearch.console_index_prefix}sessions"
    es.indices.refresh(index=sessions)
    assert es.count(index=sessions)["count"] == 0  # the second login replaced the first


def test_session_cookie_alone_is_not_enough_to_change_things(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    alert_id = _ids(es, config, AGENCY_A)[0]
    with app.client() as client:
        login(client, "ana", PASSWORD)
        refused = client.post(f"/alerts/{alert_id}", data={"status": "acknowledged"})
        assert refused.status_code == 403
        refused_api = client.post(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged"})
        assert refused_api.status_code == 403
        wrong = client.post(
            f"/api/v1/alerts/{alert_id}",
            json={"status": "acknowledged"},
            headers={"X-CSRF-Token": "forged"},
        )
        assert wrong.status_code == 403
    assert (
        es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]["alert.status"]
        == "new"
    )


def test_login_form_needs_its_csrf_cookie(app: RunningConsole) -> None:
    with app.client() as client:
        response = client.post("/login", data={"username": "ana", "password": PASSWORD})
        assert response.status_code == 403
        assert "socpipe_session" not in response.headers.get("set-cookie", "")


def test_agency_analyst_sees_only_their_agency(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    own, other = _ids(es, config, AGENCY_A), _ids(es, config, AGENCY_B)
    assert own and other
    with app.client() as client:
        login(client, "ana", PASSWORD)
        listed = client.get("/api/v1/alerts", params={"closed": "1", "size": "200"}).json()
        assert listed["total"] == len(own)
        assert {a["alert"]["organization.id"] for a in listed["alerts"]} == {AGENCY_A}
        # Naming the other agency, in a filter or in the query language, finds nothing.
        for params in (
            {"agency": AGENCY_B},
            {"q": f"organization.id:{AGENCY_B}"},
            {"q": f"organization.id:{AGENCY_B} or organization.id:{AGENCY_A}"},
            {"q": f"not organization.id:{AGENCY_A}"},
            {"q": "organization.id:*"},
        ):
            counted = client.get("/api/v1/alerts/count", params={**params, "closed": "1"}).json()
            found = client.get("/api/v1/alerts", params={**params, "closed": "1"}).json()
            assert {a["alert"]["organization.id"] for a in found["alerts"]} <= {AGENCY_A}, params
            assert counted["count"] == found["total"]
        groups = client.get("/api/v1/alerts", params={"group": "agency", "closed": "1"}).json()
        assert [g["key"] for g in groups["groups"]] == [AGENCY_A]
        # Another agency's alert by URL: not found, as an unknown id (its existence is hidden).
        assert client.get(f"/alerts/{other[0]}").status_code == 404
        assert client.get(f"/api/v1/alerts/{other[0]}").status_code == 404
        assert client.get("/api/v1/alerts/no-such-alert").status_code == 404
        assert client.get(f"/alerts/{own[0]}").status_code == 200
        # Exports follow the scope.
        exported = client.get("/alerts/export.csv", params={"closed": "1"})
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == len(own) and {r["organization.id"] for r in rows} == {AGENCY_A}
        dumped = json.loads(client.get("/alerts/export.json", params={"agency": AGENCY_B}).text)
        assert dumped == []
        # Entity pages: a source seen by both agencies shows this agency's alerts only.
        shared = client.get("/api/v1/entities/source.ip/198.51.100.44").json()
        assert shared["alerts"] and {a["organization.id"] for a in shared["alerts"]} == {AGENCY_A}
        page = client.get("/entities/source.ip/198.51.100.44")
        assert page.status_code == 200 and AGENCY_B not in page.text


def test_bulk_action_on_another_agencys_alert_is_not_found(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    other = _ids(es, config, AGENCY_B)[:3]
    with app.client() as client:
        login(client, "ana", PASSWORD)
        token = csrf_of(client)
        form = client.post(
            "/alerts/bulk",
            data={"csrf_token": token, "alert": other, "status": "closed", "resolution": "benign"},
        )
        assert form.status_code == 404
        api = client.post(
            "/api/v1/alerts/bulk",
            json={"alerts": other, "change": {"status": "closed", "resolution": "benign"}},
            headers={"X-CSRF-Token": token},
        )
        assert api.status_code == 404 and sorted(api.json()["not_found"]) == sorted(other)
        # "Everything matching" a filter naming the other agency changes nothing either.
        everything = client.post(
            "/api/v1/alerts/bulk",
            json={"filter": {"agency": AGENCY_B}, "change": {"status": "acknowledged"}},
            headers={"X-CSRF-Token": token},
        )
        assert everything.json()["changed"] == []
    statuses = {
        es.get(index=config.elasticsearch.alerts_index, id=i)["_source"]["alert.status"]
        for i in other
    }
    assert statuses == {"new"}


def test_bulk_close_with_resolution_hides_them_and_audits(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    with app.client() as client:
        login(client, "central", PASSWORD)
        token = csrf_of(client)
        page = client.get("/api/v1/alerts", params={"agency": AGENCY_B, "size": "25"}).json()
        chosen = [{"id": a["id"], "version": a["version"]} for a in page["alerts"][:4]]
        missing = client.post(
            "/api/v1/alerts/bulk",
            json={"alerts": chosen, "change": {"status": "closed"}},
            headers={"X-CSRF-Token": token},
        )
        assert missing.status_code == 400 and "resolution" in missing.json()["error"]
        done = client.post(
            "/api/v1/alerts/bulk",
            json={"alerts": chosen, "change": {"status": "closed", "resolution": "false_positive"}},
            headers={"X-CSRF-Token": token},
        ).json()
        assert sorted(done["changed"]) == sorted(c["id"] for c in chosen)
        open_now = client.get("/api/v1/alerts", params={"agency": AGENCY_B, "size": "200"}).json()
        assert open_now["total"] == page["total"] - 4
        assert not {c["id"] for c in chosen} & {a["id"] for a in open_now["alerts"]}
        closed = client.get("/api/v1/alerts", params={"status": "closed", "size": "200"}).json()
        assert {a["id"] for a in closed["alerts"]} == {c["id"] for c in chosen}
    for item in chosen:
        source = es.get(index=config.elasticsearch.alerts_index, id=item["id"])["_source"]
        # One spelling, one value: flat keys, no nested "alert" object beside them.
        assert source["alert.status"] == "closed"
        assert source["alert.resolution"] == "false_positive"
        assert "alert" not in source
        assert source["alert.updated_by"] == "central"
        assert [h["field"] for h in source["alert.history"]] == ["status", "resolution"]
    es.indices.refresh(index=f"{config.elasticsearch.console_index_prefix}audit")
    audit = es.search(
        index=f"{config.elasticsearch.console_index_prefix}audit",
        query={
            "bool": {
                "filter": [{"term": {"action": "alert.update"}}, {"term": {"field": "status"}}]
            }
        },
        size=100,
    )["hits"]["hits"]
    entries = {hit["_source"]["target"]: hit["_source"] for hit in audit}
    assert set(entries) == {c["id"] for c in chosen}
    assert all(
        e["from"] == "new" and e["to"] == "closed" and e["actor"] == "central"
        for e in entries.values()
    )


def test_conflicting_edit_names_who_changed_it(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    alert_id = _ids(es, config, AGENCY_A)[0]
    with app.client() as first, app.client() as second:
        login(first, "ana", PASSWORD)
        login(second, "central", PASSWORD)
        seen = first.get(f"/api/v1/alerts/{alert_id}").json()["version"]
        assert second.get(f"/api/v1/alerts/{alert_id}").json()["version"] == seen
        taken = second.post(
            f"/api/v1/alerts/{alert_id}",
            json={"assignee": "central", "version": seen},
            headers={"X-CSRF-Token": csrf_of(second)},
        )
        assert taken.status_code == 200
        stale = first.post(
            f"/api/v1/alerts/{alert_id}",
            json={"status": "in_progress", "assignee": "ana", "version": seen},
            headers={"X-CSRF-Token": csrf_of(first)},
        )
        assert stale.status_code == 409
        assert stale.json()["changed_by"] == "central"
        assert "changed by central at" in stale.json()["error"]
        # The page form carries the version it showed: the same refusal.
        form = first.post(
            f"/alerts/{alert_id}",
            data={"csrf_token": csrf_of(first), "version": seen, "status": "in_progress"},
        )
        assert form.status_code == 409 and "changed by central at" in form.text
    source = es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]
    assert source["alert.assignee"] == "central" and source["alert.status"] == "new"


def test_note_shows_in_history(app: RunningConsole, es: Elasticsearch, config: Config) -> None:
    alert_id = _ids(es, config, AGENCY_A)[1]
    with app.client() as client:
        login(client, "ana", PASSWORD)
        note = "Checked with the agency: <b>planned</b> pentest & scan"
        response = client.post(
            f"/alerts/{alert_id}",
            data={"csrf_token": csrf_of(client), "note": note, "status": "acknowledged"},
        )
        assert response.status_code == 303
        page = client.get(f"/alerts/{alert_id}").text
        assert "Checked with the agency: &lt;b&gt;planned&lt;/b&gt; pentest &amp; scan" in page
        timeline = client.get(f"/api/v1/alerts/{alert_id}").json()["timeline"]
        assert [(e["field"], e["by"]) for e in timeline][:2] == [
            ("status", "ana"),
            ("note", "ana"),
        ] or [(e["field"], e["by"]) for e in timeline][:2] == [("note", "ana"), ("status", "ana")]
        assert any(e["to"] == note for e in timeline)


def test_viewer_and_auditor_cannot_change_alerts(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    alert_id = _ids(es, config, AGENCY_A)[2]
    for name in ("viewer", "auditor"):
        with app.client() as client:
            login(client, name, PASSWORD)
            assert client.get(f"/alerts/{alert_id}").status_code == 200
            refused = client.post(
                f"/api/v1/alerts/{alert_id}",
                json={"status": "acknowledged"},
                headers={"X-CSRF-Token": csrf_of(client)},
            )
            assert refused.status_code == 403
    with app.client() as client:
        login(client, "viewer", PASSWORD)
        assert client.get("/audit").status_code == 403
        assert client.get("/health").status_code == 403
        assert client.get("/suppressions").status_code == 403
    with app.client() as client:
        login(client, "auditor", PASSWORD)
        assert client.get("/audit").status_code == 200
    assert (
        es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]["alert.status"]
        == "new"
    )


def test_disabled_users_session_stops_working(app: RunningConsole, config: Config) -> None:
    with app.client() as client:
        login(client, "bob", PASSWORD)
        assert client.get("/api/v1/session").status_code == 200
        cli.users_disable(config, "bob")
        assert client.get("/api/v1/session").status_code == 401
        assert login(client, "bob", PASSWORD).status_code == 401


def test_logins_are_throttled(app: RunningConsole, config: Config) -> None:
    limit = config.console.login_max_failures
    with app.client() as client:
        for _ in range(limit):
            assert login(client, "viewer", "wrong wrong wrong").status_code == 401
        refused = login(client, "viewer", PASSWORD)
        assert refused.status_code == 429 and "too many failed logins" in refused.text
        # Other names from elsewhere are not locked out by it.
        assert login(client, "ana", PASSWORD).status_code == 303


def test_security_headers(app: RunningConsole) -> None:
    with app.client() as client:
        page = client.get("/login")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert (
            "<script>" not in page.text
            and " on" not in page.text.split("<body", 1)[1].split(">", 1)[0]
        )
        assert page.headers["x-frame-options"] == "DENY"
        htmx = client.get("/static/htmx.min.js")
        assert htmx.status_code == 200 and "htmx" in htmx.text


def test_cli_set_uses_the_same_guard_and_audit(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    alert_id = _ids(es, config, AGENCY_A)[3]
    shown = cli.alerts_show(config, alert_id, "ana")
    message = cli.alerts_set(
        config, [alert_id], Change(status="in_progress", note="from cli"), "ana", shown["version"]
    )
    assert "saved" in message
    with pytest.raises(cli.CommandError, match="changed by ana at"):
        cli.alerts_set(config, [alert_id], Change(assignee="ana"), "ana", shown["version"])
    with pytest.raises(cli.CommandError, match="no alert"):
        cli.alerts_set(config, [_ids(es, config, AGENCY_B)[0]], Change(assignee="ana"), "ana", None)
    source = es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]
    assert (
        source["alert.status"] == "in_progress" and source["alert.notes"][-1]["text"] == "from cli"
    )


def test_load_is_idempotent_and_replay_keeps_triage(
    app: RunningConsole, es: Elasticsearch, config: Config, scans: dict[str, Path]
) -> None:
    alert_id = _ids(es, config, AGENCY_A)[4]
    cli.alerts_set(config, [alert_id], Change(status="closed", resolution="benign"), "ana", None)
    before = es.count(index=config.elasticsearch.alerts_index)["count"]
    again = load(config, scans[AGENCY_A])
    assert " 0 alerts loaded" in again and "already present" in again
    # The pipeline writing the same alert again (a replay) gets "already present".
    original = next(
        json.loads(line)
        for line in scans[AGENCY_A].read_text().splitlines()
        if json.loads(line)["alert.id"] == alert_id
    )
    result = ElasticsearchSink(es, config.elasticsearch).write(
        [Document.of(config.elasticsearch.alerts_index, alert_id, original)]
    )
    assert (result.created, result.already_present) == (0, 1)
    source = es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]
    assert source["alert.status"] == "closed" and source["alert.resolution"] == "benign"
    assert es.count(index=config.elasticsearch.alerts_index)["count"] == before


def test_health_lists_dead_letters_and_resubmits_them(
    app: RunningConsole, config: Config, es: Elasticsearch
) -> None:
    from socpipe.core.kafka_clients import make_producer
    from tests.integration.conftest import read_topic

    fixed = {
        "@timestamp": "2026-03-03T10:00:00.000Z",
        "message": "fixed by hand",
        "organization.id": AGENCY_A,
    }
    letter = {
        "stage": "detect",
        "reason": "not JSON: unexpected character",
        "topic": config.kafka.topics.events,
        "partition": 0,
        "offset": 41,
        "position": 0,
        "record": json.dumps(fixed),
    }
    producer = make_producer(config.kafka)
    producer.send(
        config.kafka.topics.deadletter, key=b"so-tttt/web01", value=json.dumps(letter).encode()
    )
    producer.flush()
    producer.close()
    with app.client() as client:
        login(client, "ana", PASSWORD)
        assert client.get("/health").status_code == 403
    with app.client() as client:
        login(client, "central", PASSWORD)
        health = client.get("/api/v1/health").json()
        assert health["errors"] == []
        assert health["deadletter_count"] == 1
        shown = health["deadletters"][0]
        assert (shown["reason"], shown["topic"]) == (letter["reason"], config.kafka.topics.events)
        assert {lag["name"] for lag in health["lags"]} >= {
            "detect",
            "index (events)",
            "index (alerts)",
        }
        page = client.get("/health")
        assert page.status_code == 200 and "not JSON: unexpected character" in page.text
        resubmitted = client.post(
            "/health/deadletters/resubmit",
            data={
                "csrf_token": csrf_of(client),
                "partition": str(shown["partition"]),
                "offset": str(shown["offset"]),
            },
        )
        assert resubmitted.status_code == 303
        gone = client.post(
            "/health/deadletters/resubmit",
            data={
                "csrf_token": csrf_of(client),
                "partition": str(shown["partition"]),
                "offset": "999",
            },
        )
        assert gone.status_code == 400 and "no longer" in gone.text
    assert read_topic(config, config.kafka.topics.events, expected=1) == [fixed]
    audit = f"{config.elasticsearch.console_index_prefix}audit"
    es.indices.refresh(index=audit)
    entries = es.search(index=audit, query={"term": {"action": "deadletter.resubmit"}})["hits"][
        "hits"
    ]
    assert [e["_source"]["actor"] for e in entries] == ["central"]


def test_times_show_in_the_users_zone(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    alert_id = _ids(es, config, AGENCY_A)[5]
    stamp = es.get(index=config.elasticsearch.alerts_index, id=alert_id)["_source"]["@timestamp"]
    with app.client() as client:
        login(client, "ana", PASSWORD)
        utc = stamp[:10] + " " + stamp[11:19] + " +00"
        assert utc in client.get(f"/alerts/{alert_id}").text  # the console's zone: UTC
        token = csrf_of(client)
        assert (
            client.post(
                "/account", data={"csrf_token": token, "timezone": "Asia/Ho_Chi_Minh"}
            ).status_code
            == 303
        )
        page = client.get(f"/alerts/{alert_id}").text
        from datetime import datetime
        from zoneinfo import ZoneInfo

        local = datetime.fromisoformat(stamp).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
        assert local.strftime("%Y-%m-%d %H:%M:%S +07") in page and utc not in page


def test_admin_manages_users_and_reads_no_alerts(app: RunningConsole, config: Config) -> None:
    add_user(config, "root-admin", "admin")
    with app.client() as client:
        login(client, "root-admin", PASSWORD)
        assert client.get("/alerts").status_code == 403
        assert client.get("/api/v1/alerts").status_code == 403
        assert client.get("/users").status_code == 200
        token = csrf_of(client)
        added = client.post(
            "/users",
            data={
                "csrf_token": token,
                "name": "lan",
                "role": "agency-viewer",
                "agency": AGENCY_B,
                "password": PASSWORD,
            },
        )
        assert added.status_code == 303
        refused = client.post(
            "/users",
            data={"csrf_token": token, "name": "x", "role": "agency-viewer", "password": PASSWORD},
        )
        assert refused.status_code == 400 and "needs --agency" in refused.text
        assert client.post("/users/lan/disable", data={"csrf_token": token}).status_code == 303
    with app.client() as client:
        assert login(client, "lan", PASSWORD).status_code == 401
        login(client, "ana", PASSWORD)
        assert client.get("/users").status_code == 403


def test_correlation_members_are_resolved_within_scope(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    index = config.elasticsearch.alerts_index

    def find(rule_name: str, agency: str) -> dict:
        hits = es.search(
            index=index,
            query={
                "bool": {
                    "filter": [
                        {"term": {"rule.name": rule_name}},
                        {"term": {"organization.id": agency}},
                    ]
                }
            },
            size=1,
        )["hits"]["hits"]
        return hits[0]["_source"]

    chained = find("SSH Brute Force Followed By A Successful Login", AGENCY_A)
    brute = find("SSH Brute Force From One Source", AGENCY_A)
    # The events a brute force counted, as the index stage would have stored them.
    events_index = f"{config.elasticsearch.events_index_prefix}2026.03.02"
    for number, event_id in enumerate(brute["correlation.event_ids"]):
        es.index(
            index=events_index,
            id=event_id,
            document={
                "@timestamp": f"2026-03-02T08:30:{number:02d}.000Z",
                "event.id": event_id,
                "organization.id": AGENCY_A,
                "event.original": f"sshd failure {number}",
            },
        )
    es.indices.refresh(index=events_index)
    with app.client() as client:
        login(client, "ana", PASSWORD)
        view = client.get(f"/api/v1/alerts/{chained['alert.id']}").json()
        assert brute["alert.id"] in {m["alert.id"] for m in view["member_alerts"]} or any(
            m["rule.name"] == "SSH Brute Force From One Source" for m in view["member_alerts"]
        )
        counted = client.get(f"/api/v1/alerts/{brute['alert.id']}").json()
        assert [e["event.id"] for e in counted["member_events"]] == brute["correlation.event_ids"]
        page = client.get(f"/alerts/{brute['alert.id']}").text
        assert "sshd failure 0" in page
    with app.client() as client:
        login(client, "bob", PASSWORD)  # another agency: neither the alert nor its events
        assert client.get(f"/api/v1/alerts/{brute['alert.id']}").status_code == 404


def test_alerts_spanning_agencies_are_for_central_roles_only(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    es.index(
        index=config.elasticsearch.alerts_index,
        id="across-agencies",
        document={
            "@timestamp": "2026-03-02T09:00:00.000Z",
            "alert.id": "across-agencies",
            "alert.status": "new",
            "rule.id": "0936537c-d99e-4d3e-9c99-1787c9a72daa",
            "rule.name": "One Source Attacking Several Agencies",
            "rule.level": "high",
            "organization.id": "multiple",
            "correlation.agencies": [AGENCY_A, AGENCY_B],
            "source.ip": "198.51.100.7",
        },
        refresh=True,
    )
    with app.client() as client:
        login(client, "ana", PASSWORD)
        assert client.get("/api/v1/alerts/across-agencies").status_code == 404
        found = client.get(
            "/api/v1/alerts", params={"q": "source.ip:198.51.100.7", "closed": "1"}
        ).json()
        assert "across-agencies" not in {a["id"] for a in found["alerts"]}
    with app.client() as client:
        login(client, "central", PASSWORD)
        assert client.get("/api/v1/alerts/across-agencies").status_code == 200


def test_a_write_racing_the_read_is_refused_by_elasticsearch(
    app: RunningConsole, es: Elasticsearch, config: Config
) -> None:
    """Between the service's read and its write someone else saves: the if_seq_no guard in
    Elasticsearch refuses the stale write, and the analyst is told who changed it."""
    import asyncio

    from socpipe.console.audit import AuditLog
    from socpipe.console.elastic import connect_async
    from socpipe.console.roles import Role
    from socpipe.console.scope import AlertHit, Scope, ScopedAlerts
    from socpipe.console.settings import console_settings
    from socpipe.console.triage import Conflict, TriageService
    from socpipe.console.users import User

    alert_id = _ids(es, config, AGENCY_A)[6]
    indices = console_settings(config).indices

    class RacedAlerts(ScopedAlerts):
        async def get(self, ident: str) -> AlertHit | None:
            hit = await super().get(ident)
            if not hasattr(self, "raced"):
                self.raced = True
                es.update(
                    index=indices.alerts,
                    id=ident,
                    doc={
                        "alert.assignee": "bob",
                        "alert.updated_by": "bob",
                        "alert.updated": "2026-03-03T10:00:00.000Z",
                    },
                )
            return hit

    async def scenario() -> str:
        client = connect_async(config.elasticsearch)
        try:
            service = TriageService(
                RacedAlerts(client, indices, Scope(None)),
                AuditLog(client, indices.audit),
                User("central", Role.CENTRAL_ANALYST, None),
            )
            with pytest.raises(Conflict) as raised:
                await service.apply(alert_id, Change(status="acknowledged"))
            return str(raised.value)
        finally:
            await client.close()

    message = asyncio.run(scenario())
    assert "changed by bob at 2026-03-03T10:00:00.000Z" in message
    source = es.get(index=indices.alerts, id=alert_id)["_source"]
    assert (source["alert.status"], source["alert.assignee"]) == ("new", "bob")
