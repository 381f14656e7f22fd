"""The console's pages (server-rendered; htmx swaps the queue's results in place).

URLs are fixed so that they can be bookmarked and tested. Every route runs behind the guard
of console/web.py (session, CSRF); each checks its permission with ``require``. One module per
area; this one assembles their routes (the queue's routes before one alert's, so that
``/alerts/bulk`` and ``/alerts/export.csv`` are not taken for alert ids).
"""

from __future__ import annotations

from fastapi import APIRouter

from socpipe.console.pages import alerts, entities, operations, session, suppressions
from socpipe.console.pages.common import error_page

router = APIRouter()
for module in (session, alerts, suppressions, entities, operations):
    router.include_router(module.router)

__all__ = ["error_page", "router"]
