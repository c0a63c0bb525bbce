"""The server's own health: /healthz (no token needed: for load balancers and monitors).
/docs and /openapi.json are added by serve.docs and FastAPI."""

from __future__ import annotations

from fastapi import APIRouter

from .state import Shared

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(served: Shared):
    """Whether the server answers and its index can be read (no token needed)."""
    count = await served.workers.run(len)
    return {"status": "ok", "images": count}
