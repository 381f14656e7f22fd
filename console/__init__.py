"""The analysts' web console and API: sessions, roles, agency scope, pages, triage service."""
