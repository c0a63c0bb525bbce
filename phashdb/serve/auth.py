"""The bearer token a server may require of every /v1 call: sent as `Authorization: Bearer`
by scripts, or kept in a cookie by the review page (set from the page's address, see
routes_review.review_page)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from .state import Shared

bearer = HTTPBearer(auto_error=False, description="Needed when the server has a token.")


def token_cookie(request: Request) -> str:
    # Cookies are per host, not per port: two servers on 127.0.0.1 must not share one.
    return f"phashdb-token-{request.scope['server'][1]}"


def same_token(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


async def authorised(
    request: Request,
    served: Shared,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """HTTPException 401 unless the server has no token or the request carries it."""
    token = served.config.token
    if token is None:
        return
    # The page's cookie or the bearer token.
    given = credentials.credentials if credentials else request.cookies.get(
        token_cookie(request), ""
    )  # fmt: skip
    if not same_token(given, token):
        raise HTTPException(401, "a valid bearer token is needed (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


V1 = [Depends(authorised)]  # the dependencies of every /v1 route
