"""Where the benchmarks find the checkout and the shared reference data (`../shared/data`
beside the checkout, or ``SOCPIPE_SHARED_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SOCPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))
SIGMA_WINDOWS = SHARED / "sigma" / "rules" / "windows"
