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

# Until the portal is built: a page that takes the credential out of the address bar and
# history at once (keeping it for this tab only), as the portal will.
_SCRIPT: Final = (
    "var token = new URLSearchParams(location.hash.slice(1)).get('token');"
    "if (token) { sessionStorage.setItem('billing-token', token); }"
    "history.replaceState(null, '', location.pathname + location.search);"
)
_SCRIPT_HASH: Final = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
# The page's own policy (a meta element: a header's value would need quotes API Gateway's
# static header values cannot hold): nothing loads but this one script; no framing.
PORTAL_CSP: Final = (
    f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)
PORTAL_PAGE: Final = (
    "<!doctype html>\n"
    '<html lang="en"><head><meta charset="utf-8">\n'
    f'<meta http-equiv="Content-Security-Policy" content="{PORTAL_CSP}">\n'
    '<meta name="referrer" content="no-referrer">\n'
    "<title>Billing portal</title></head>\n"
    "<body><h1>Billing portal</h1>\n"
    "<p>Your usage and invoices will be shown here.</p>\n"
    f"<script>{_SCRIPT}</script>\n"
    "</body></html>\n"
)
PORTAL_CONTENT_TYPE: Final = "text/html; charset=utf-8"
# Static headers of the page (no quotes inside: API Gateway wraps each in single quotes).
PORTAL_HEADERS: Final = (
    ("Content-Type", PORTAL_CONTENT_TYPE),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
)
