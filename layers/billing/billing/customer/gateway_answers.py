"""What the customer API answers without its function: API Gateway's own refusals (its
gateway responses) and the portal page. The stack (stacks/customer_api.py) and the local
gateway (`billing local`) answer from these same declarations.

The texts go into API Gateway mapping templates, which are Velocity: none may hold `$` or
`#` (checked by a test).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Final


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> str:
        """The same shape as the function's errors: `{"statusCode": N, "message": ...}`."""
        return json.dumps({"statusCode": self.status, "message": self.message})


# By API Gateway's response type (aws_apigateway.ResponseType names).
GATEWAY_ANSWERS: Final = {
    # no Authorization header, or the authorizer refused the credential
    "UNAUTHORIZED": GatewayAnswer(
        401,
        "a valid key is needed: send it as 'Authorization: Bearer <key>'",
        (("WWW-Authenticate", "Bearer"),),
    ),
    # the credential's policy does not cover the request (a portal link writing)
    "ACCESS_DENIED": GatewayAnswer(403, "this key may not make this request"),
    # the credential's throttle key is disabled: the key was revoked
    "INVALID_API_KEY": GatewayAnswer(403, "this key is no longer valid"),
    "THROTTLED": GatewayAnswer(429, "too many requests for this key: slow down and retry"),
    # a path that is no route (API Gateway's own answer is a puzzling 403)
    "MISSING_AUTHENTICATION_TOKEN": GatewayAnswer(404, "Not found"),
    # the authorizer failed (not a refusal): not cached, so a retry may pass
    "AUTHORIZER_FAILURE": GatewayAnswer(500, "the key could not be checked: try again"),
}
# Every answer is JSON (templates are chosen by content type; this is the one given).
JSON: Final = "application/json"


# --- the portal page ------------------------------------------------------------------------

# The page is one document: its style and script (the files beside it in `portal/`) go
# inline, each allowed by its hash in the page's policy, so API Gateway answers it from one
# mapping template without a function, and nothing else loads.
_PORTAL_FILES: Final = resources.files("billing.customer") / "portal"


def _portal_file(name: str) -> str:
    return (_PORTAL_FILES / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _portal_page() -> tuple[str, str]:
    """The page and its content security policy."""
    style = "\n" + _portal_file("portal.css")
    script = "\n" + _portal_file("portal.js")
    # A meta element, not a header: a header's value would need quotes that API Gateway's
    # static header values cannot hold. Only this style and script; data from this origin
    # (the routes under the same stage); no framing (the header says it: a meta cannot).
    policy = (
        f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
    )
    page = _portal_file("index.html")
    for marker, part in (
        ("<!--policy-->", f'<meta http-equiv="Content-Security-Policy" content="{policy}">'),
        ("<!--style-->", f"<style>{style}</style>"),
        ("<!--script-->", f"<script>{script}</script>"),
    ):
        if page.count(marker) != 1:
            raise ValueError(f"portal/index.html must hold {marker} once")
        page = page.replace(marker, part)
    return page, policy


PORTAL_PAGE, PORTAL_CSP = _portal_page()


def portal_page_hash() -> str:
    """The page's SHA-256, hex: what docs/portal.sha256 holds when docs/portal.png is of it."""
    return hashlib.sha256(PORTAL_PAGE.encode()).hexdigest()


PORTAL_CONTENT_TYPE: Final = "text/html; charset=utf-8"
# Static headers of the page (no quotes inside: API Gateway wraps each in single quotes).
PORTAL_HEADERS: Final = (
    ("Content-Type", PORTAL_CONTENT_TYPE),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
)
