"""The trash over HTTP: /v1/trash. Trashing a group's images goes through the code of
`dedupe --apply trash` (serve.actions), restoring through phashdb.trash, so the index and the
trash agree."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from .auth import V1
from .names import Id
from .state import Shared

router = APIRouter(prefix="/v1", dependencies=V1, tags=["trash"])


class TrashRequest(BaseModel):
    """Images to move to the trash, and the image of their group that stays; with the group's
    `members` and `version` as /v1/duplicates gave them, refused (409) if the group changed."""

    ids: list[Id] = Field(min_length=1, max_length=10_000)
    keeper: Id
    members: list[Id] | None = Field(default=None, max_length=10_000)
    version: str | None = Field(default=None, max_length=100)


@router.post("/trash")
async def trash(request: TrashRequest, served: Shared):
    """Move images of a group to the trash, keeping `keeper`: what `dedupe --apply trash`
    does with a group. Each image's outcome is listed (a file already gone is an error
    there, the others go on). Actions are applied one at a time; one whose keeper has gone
    meanwhile, or (given `members` and `version`) whose group changed, is refused with a
    409 and nothing is done."""
    if request.keeper in request.ids:
        raise HTTPException(422, f"the keeper {request.keeper!r} is among the ids to trash")
    actions = served.actions
    actions.arrived(request)
    done = await served.workers.run(lambda index: actions.trash(index, request))
    return {"done": [d.to_json() for d in done]}


@router.get("/trash")
async def trash_list(served: Shared):
    """What is in the trash, oldest first."""
    from ..trash import list_trash

    found = await served.workers.run(lambda index: list_trash(index.trash))
    return {"trash": [t.to_json() for t in found]}


@router.post("/trash/{entry}/restore")
async def restore(entry: str, served: Shared):
    """Put a trashed file back where it was, and into the index under its old id."""
    from ..trash import list_trash
    from ..trash import restore as put_back

    def run(index):
        if entry not in {t.id for t in list_trash(index.trash)}:
            raise HTTPException(404, f"no entry {entry!r} in the trash")
        return put_back(index.trash, entry, index=index)

    return (await served.workers.run(run)).to_json()
