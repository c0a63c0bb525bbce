"""Who may talk to the server, checked before any route: the `Host` a request names and the
origin a state-changing request comes from.

Why the `Host` check: a server without a token trusts whoever reaches its loopback port, and a
web page can reach it by rebinding its own name to 127.0.0.1 (DNS rebinding). The browser then
sends that name as `Host`, which is how the rebinding is told apart from a page of our own.

Why the origin check: a page on any site can make the browser send a "simple" POST (an upload,
a restore without a body) to the server; it cannot read the answer, but the change is done.
Browsers name the sender in `Origin` and `Sec-Fetch-Site`; a script (curl, httpx) sends neither,
and is let through (it has the token when the server needs one).
"""

from __future__ import annotations

import ipaddress
import json

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SAME_SITE = {"same-origin", "none"}  # "none": the user typed the address or opened a bookmark


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """'127.0.0.1:8080' -> ('127.0.0.1', 8080); '[::1]:80' -> ('::1', 80); the port is None
    when absent. Anything malformed gives ('', None), which names no host."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("x" if rest else "")
    else:
        host, _, port = value.partition(":")
    if port and not port.isdigit():
        return "", None
    return host.lower(), int(port) if port else None


class Guard:
    """ASGI middleware: 421 for a `Host` that names no loopback address or another port (when
    `loopback_only`), 403 for a state-changing request sent by a page of another origin."""

    def __init__(self, app, *, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("host", "")
        refusal = self._host_refusal(scope, given) or self._origin_refusal(scope, headers, given)
        if refusal is None:
            return await self.app(scope, receive, send)
        status, message = refusal
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    def _host_refusal(self, scope, given: str):
        if not self.loopback_only:
            return None
        host, port = split_host(given)
        own = (scope.get("server") or (None, None))[1]
        if is_loopback(host) and (port or 80) == own:
            return None
        return 421, (
            f"Host {given!r} does not name this server: without a token it answers only to "
            f"localhost, 127.0.0.1 or [::1] on port {own} (give a token to serve other names)"
        )

    def _origin_refusal(self, scope, headers: dict, given: str):
        if scope["method"] in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{given}"
        if (site is None or site in SAME_SITE) and (origin is None or origin == own):
            return None
        return 403, (
            f"a {scope['method']} from another site ({origin or site}) is refused: changes "
            "are taken only from this server's own page or from scripts"
        )
