"""Both anomaly evaluations, written into docs/benchmarks.md.

python -m bench.anomaly        (make bench-anomaly)
"""

from __future__ import annotations

import platform
import time
from importlib import metadata

from bench.anomaly import hdfs, templates
from bench.report import write_section


def main() -> None:
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("scikit-learn", "numpy", "drain3")
    )
    lines = [
        f"- Date: {time.strftime('%Y-%m-%d')}; Python {platform.python_version()}, {versions}",
        "- Command: `make bench-anomaly` (= `.venv/bin/python -m bench.anomaly`)",
        "",
        "### HDFS-100k anomaly detection (loglizer's split)",
        "",
        *hdfs.report_lines(),
        "",
        "### Template mining on the loghub 2k samples (Drain via drain3, socpipe's masks)",
        "",
        *templates.report_lines(),
    ]
    print("\n".join(lines))
    document = write_section("bench.anomaly", lines, "## Anomaly models (bench/anomaly)")
    print(f"written to {document}")


if __name__ == "__main__":
    main()
