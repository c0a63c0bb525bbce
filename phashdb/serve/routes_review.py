"""The review page and what it reads and decides: `/`, /v1/duplicates, /v1/decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ..keep import KEEP_RULES, plans
from ..pages import render
from .auth import V1, same_token, token_cookie
from .names import Id, query_id
from .state import ServeConfig, Shared, known

page = APIRouter()
router = APIRouter(prefix="/v1", dependencies=V1)


class Pairs(BaseModel):
    """Pairs of stored image ids, each marked not a duplicate of the other; with the group's
    `members` and `version` as /v1/duplicates gave them, refused (409) if the group changed."""

    pairs: list[tuple[Id, Id]] = Field(min_length=1, max_length=10_000)
    members: list[Id] | None = Field(default=None, max_length=10_000)
    version: str | None = Field(default=None, max_length=100)


@page.get("/", response_class=HTMLResponse, include_in_schema=False)
async def review_page(request: Request, served: Shared, token: str | None = None):
    """The page; `/?token=...` (the address `phashdb review` opens) keeps the token in a
    cookie the page's requests carry, and sends the browser on to `/` (the token out of
    the address bar and the history)."""
    own = served.config.token
    if token is None or own is None:
        return HTMLResponse(served.page)
    if not same_token(token, own):
        raise HTTPException(401, "the token in the address is not this server's")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(token_cookie(request), token, httponly=True, samesite="strict")
    return response


def review_html(config: ServeConfig) -> str:
    return render("review.html", rule=config.rule, keep_rules=KEEP_RULES)


@router.get("/duplicates", tags=["duplicates"])
async def duplicates(
    served: Shared,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    threshold: Annotated[int | None, Query(ge=0, le=64)] = None,
):
    """The duplicate groups, as the report orders them (most bytes freed first), a page at a
    time; in each, the keeper first (the rule `best`) and the close pairs."""
    rule = served.config.rule

    def groups(index):
        # A dedupe is a pass over the whole index: its groups are kept, per worker (each
        # its own index and version), until the index changes or another threshold is asked.
        version = index.version()
        kept = served.groups.get(index)
        if version is not None and kept and kept[:2] == (version, threshold):
            found = kept[2]
        else:
            try:
                found = index.dedupe(threshold)
            except ValueError as e:  # a threshold beyond the reach: too many pairs
                raise HTTPException(422, str(e)) from None
            served.groups[index] = (version, threshold, found)
        return index.threshold, plans(found, rule)

    used, found = await served.workers.run(groups)
    return {
        "total": len(found),
        "offset": offset,
        "limit": limit,
        "threshold": used if threshold is None else threshold,
        "rule": rule,
        "groups": [p.to_json() for p in found[offset : offset + limit]],
    }


@router.post("/decisions", tags=["decisions"], status_code=201)
async def decide(request: Pairs, served: Shared):
    """Mark pairs of stored images as not duplicates: from then on they are no match of each
    other, in every check, upload and group (`phashdb decisions forget` undoes it)."""

    def mark(index):
        for a, b in request.pairs:
            known(index, a), known(index, b)
            if a == b:
                raise HTTPException(422, f"a pair needs two different ids, got {a!r} twice")
        return index.mark_not_duplicates(request.pairs)

    decided = await served.workers.run(lambda index: served.actions.decide(index, request, mark))
    return {"decisions": [d.to_json() for d in decided]}


@router.get("/decisions", tags=["decisions"])
async def list_decisions(served: Shared):
    """Every pair marked not duplicates, oldest first."""
    found = await served.workers.run(lambda index: index.decisions())
    return {"decisions": [d.to_json() for d in found]}


@router.delete("/decisions", tags=["decisions"])
async def forget(request: Request, a: str, b: str, served: Shared):
    """Forget that `a` and `b` are not duplicates."""
    a, b = (query_id(request, name) for name in ("a", "b"))
    if a == b:
        raise HTTPException(422, f"a pair needs two different ids, got {a!r} twice")
    if not await served.workers.run(lambda index: index.forget_decisions([(a, b)])):
        raise HTTPException(404, f"no decision about {a!r} and {b!r}")
    return {"forgotten": {"a": min(a, b), "b": max(a, b)}}
