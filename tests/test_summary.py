"""The end-of-scan summary: the noisiest rules, where tuning pays most."""

from __future__ import annotations

from socpipe.collectors.files import ReadStats
from socpipe.scanner.summary import ScanSummary


def summary_with(counts: dict[tuple[str, str, str], int]) -> ScanSummary:
    summary = ScanSummary(read=ReadStats(events=1000))
    for rule, count in counts.items():
        summary.by_rule[rule] = count
        summary.by_level[rule[0]] += count
        summary.alerts += count
    return summary


def test_noisiest_rules_rank_by_count_whatever_their_level() -> None:
    summary = summary_with(
        {
            ("critical", "Account Created With UID 0", "id-1"): 1,
            ("low", "Blocked Inbound Connection", "id-2"): 150,
            ("medium", "SSH Failed Password For Root", "id-3"): 40,
            ("low", "Crontab Replaced", "id-4"): 40,
            ("high", "IDS High Severity", "id-5"): 9,
            ("low", "Admin Panel Probing", "id-6"): 7,
            ("informational", "Something Else", "id-7"): 2,
        }
    )
    ranked = [(title, count) for (_level, title, _id), count in summary.noisiest_rules()]
    # Ties are broken by title, so a parallel scan prints the same list.
    assert ranked == [
        ("Blocked Inbound Connection", 150),
        ("Crontab Replaced", 40),
        ("SSH Failed Password For Root", 40),
        ("IDS High Severity", 9),
        ("Admin Panel Probing", 7),
    ]
    text = summary.render()
    noisiest = text.split("  noisiest rules:\n")[1].splitlines()
    assert noisiest[0] == "        150   60 %  low           Blocked Inbound Connection"
    assert len([line for line in noisiest if line.startswith("    ")]) == 5
    # The list by rule still leads with the most severe.
    assert (
        text.split("  alerts by rule:\n")[1].splitlines()[0].endswith("Account Created With UID 0")
    )


def test_no_noisiest_rules_without_alerts() -> None:
    assert "noisiest" not in summary_with({}).render()
