"""The pages' templates: nothing the Content-Security-Policy would block, everything escaped."""

from __future__ import annotations

import re
from pathlib import Path

from socpipe.console.web import CONTENT_SECURITY_POLICY, templates

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "templates"


def test_no_inline_script_style_or_event_handlers() -> None:
    files = sorted(TEMPLATES.glob("*.html"))
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        for script in re.findall(r"<script\b[^>]*>", text):
            assert re.search(r'\ssrc="/static/[^"]+"', script), f"{path.name}: inline {script}"
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", text), f"{path.name}: script body"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path.name}: event handler attribute"
        assert not re.search(r"\sstyle\s*=", text), f"{path.name}: style attribute"
        assert "<style" not in text and "hx-on" not in text and "javascript:" not in text
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert (
        "unsafe-inline" not in CONTENT_SECURITY_POLICY
        and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    )


def test_values_are_escaped() -> None:
    environment = templates().env
    hostile = '<script>alert(1)</script>" onmouseover="x'
    html = environment.get_template("error.html").render(
        status_code=404, message=hostile, can=lambda _: False, user=None, csrf_token=""
    )
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34; onmouseover=&#34;x" in html
