"""Generated web traffic for the behaviour-model tests: steady clients, and one that changes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

PAGES = ["/", "/tintuc", "/thutuc", "/lienhe", "/tracuu", "/vanban", "/static/app.css"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1",
]
START = datetime(2026, 3, 2, tzinfo=UTC)


def _line(client: str, moment: datetime, path: str, status: int, size: int, agent: str) -> str:
    stamp = moment.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{client} - - [{stamp}] "GET {path} HTTP/1.1" {status} {size} "-" "{agent}"'


def steady_traffic(first_day: int, days: int, seed: int) -> list[str]:
    """Twenty clients browsing office hours, each with its own habits."""
    rng = random.Random(seed)
    lines = []
    for day in range(first_day, first_day + days):
        for hour in range(8, 17):
            for number in range(20):
                client = f"10.20.1.{number + 10}"
                agent = AGENTS[number % len(AGENTS)]
                base = START + timedelta(days=day, hours=hour)
                for _ in range(rng.randint(8, 20)):
                    moment = base + timedelta(seconds=rng.randint(0, 3599))
                    status = 404 if rng.random() < 0.03 else 200
                    lines.append(
                        _line(
                            client, moment, rng.choice(PAGES), status, rng.randint(500, 9000), agent
                        )
                    )
    lines.sort(key=lambda line: datetime.strptime(line.split("[")[1][:20], "%d/%b/%Y:%H:%M:%S"))
    return lines


def scanning_client(day: int, client: str = "10.20.1.15") -> list[str]:
    """A known client that, one night, requests hundreds of missing paths with a new tool."""
    base = START + timedelta(days=day, hours=2)
    return [
        _line(
            client, base + timedelta(seconds=second), f"/backup/{second}.zip", 404, 0, "sqlmap/1.7"
        )
        for second in range(0, 3000, 6)
    ]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path
