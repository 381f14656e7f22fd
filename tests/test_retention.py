"""Which daily indices retention deletes, keeps and reports; and the command's refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import yaml

from socpipe.core.config import config_document, load_config
from socpipe.pipeline import main
from socpipe.sinks.retention import plan_retention

TODAY = date(2026, 3, 10)


def test_days_before_the_period_go_oldest_first_and_nothing_else_does() -> None:
    names = [
        "soc-events-2026.03.10",  # today
        "soc-events-2026.03.03",  # exactly seven days back: kept
        "soc-events-2026.03.02",
        "soc-events-2025.12.31",
        "soc-events-2026.03.11",  # tomorrow: another zone's today
        "soc-events-2099.01.01",  # a host with a wrong clock
        "soc-events-2026.3.1",  # not how socpipe names days
        "soc-events-manual-copy",
        "soc-alerts",
    ]
    plan = plan_retention(names, "soc-events-", keep_days=7, today=TODAY)
    assert plan.expired == ["soc-events-2025.12.31", "soc-events-2026.03.02"]
    assert plan.kept == ["soc-events-2026.03.03", "soc-events-2026.03.10", "soc-events-2026.03.11"]
    assert plan.future == ["soc-events-2099.01.01"]
    assert plan.unrecognised == ["soc-alerts", "soc-events-2026.3.1", "soc-events-manual-copy"]


def test_a_retention_of_less_than_a_day_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_retention([], "soc-events-", keep_days=0, today=TODAY)
    assert main(["prune", "--keep-days", "0"]) == 2


def test_unreachable_elasticsearch_is_a_clear_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config()
    # Port 9 on the loopback: nothing listens there, the connection is refused at once.
    unreachable = replace(
        config, elasticsearch=replace(config.elasticsearch, hosts=["http://127.0.0.1:9"])
    )
    path = tmp_path / "socpipe.yml"
    path.write_text(yaml.safe_dump(config_document(unreachable)))
    assert main(["prune", "--keep-days", "30", "--config", str(path)]) == 1
    error = capsys.readouterr().err
    assert "socpipe: error: Elasticsearch at ['http://127.0.0.1:9']" in error
