"""medallion's memory backend, saved to its file after every write.

Used by the test TAXII peer so that stopping and restarting the server (the outage test)
loses nothing it acknowledged, as a production TAXII server with a database would not.
"""

from __future__ import annotations

import os
from typing import Any

from medallion.backends.memory_backend import MemoryBackend


class PersistentMemoryBackend(MemoryBackend):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filename = kwargs["filename"]

    def add_objects(self, *args: Any, **kwargs: Any) -> Any:
        status = super().add_objects(*args, **kwargs)
        # Written aside and renamed: the test reads this file while the server runs.
        partial = f"{self.filename}.partial"
        self.save_data_to_file(partial)
        os.replace(partial, self.filename)
        return status
