"""The portal page as API Gateway serves it: one document whose style and script are the
files in billing/customer/portal/, inline, each allowed by its hash and nothing else."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from billing.customer.gateway_answers import PORTAL_CSP, PORTAL_PAGE, portal_page_hash

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "layers/billing/billing/customer/portal"


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_inlines_its_style_and_script_and_its_policy_allows_exactly_them() -> None:
    [style] = re.findall(r"<style>(.*?)</style>", PORTAL_PAGE, re.S)
    [script] = re.findall(r"<script>(.*?)</script>", PORTAL_PAGE, re.S)
    assert style.strip() == (FILES / "portal.css").read_text().strip()
    assert script.strip() == (FILES / "portal.js").read_text().strip()
    directives = dict(d.strip().split(" ", 1) for d in PORTAL_CSP.split(";"))
    assert directives == {
        "default-src": "'none'",
        "script-src": sha256(script),
        "style-src": sha256(style),
        "connect-src": "'self'",
        "img-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
    }
    assert f'<meta http-equiv="Content-Security-Policy" content="{PORTAL_CSP}">' in PORTAL_PAGE


def test_the_page_names_no_other_origin() -> None:
    # the one URL in it is SVG's namespace, a name and never fetched
    assert re.findall(r"https?://[^\s\"')]+", PORTAL_PAGE) == ["http://www.w3.org/2000/svg"]


def test_the_screenshot_in_docs_is_of_this_page() -> None:
    recorded = (ROOT / "docs/portal.sha256").read_text().strip()
    assert recorded == portal_page_hash(), "the page changed: run `make portal-screenshot`"
    assert (ROOT / "docs/portal.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
