"""What a dashboard route declares: the session's user and its organisation-bound queues."""

from typing import Annotated

from fastapi import Depends, Request

from ..lifespan import resources_of
from ..queue_service import QueueService
from .session import DashboardUser, current_user

UserDep = Annotated[DashboardUser, Depends(current_user)]


async def _queues(request: Request, user: UserDep) -> QueueService:
    """Bound to the key's organisation exactly as the API's `JobsDep`: another org's job is 404."""
    return resources_of(request).queues.for_owner(user.principal.owner)


QueuesDep = Annotated[QueueService, Depends(_queues)]
