"""The dashboard's pages: login, overview, a queue's jobs by state, a job."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from forgestack_queue.errors import JobNotFoundError
from forgestack_queue.states import JobState

from ..access import access_of, require_read
from .actions import CLEANABLE, JOB_ACTIONS, QUEUE_ACTIONS, JobAction, QueueAction
from .deps import QueuesDep, UserDep
from .overview import overview, queue_overview
from .rendering import DashboardRoute, page
from .session import (
    DashboardUser,
    clear_session,
    csrf_valid,
    login_token_valid,
    new_login_token,
    principal_for_key,
    set_login_cookie,
    set_session,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
PAGE_SIZE = 25


def _login_page(request: Request, error: str = "", status_code: int = 200) -> Response:
    token = new_login_token()
    response = page(request, "login.html", {"error": error, "login_token": token}, status_code)
    set_login_cookie(request, response, token)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request, api_key: Annotated[str, Form()], login_token: Annotated[str, Form()] = ""
) -> Response:
    if not login_token_valid(request, login_token):
        return _login_page(request, "The form expired; please sign in again.", 400)
    principal = await principal_for_key(request, api_key.strip())
    if principal is None:
        return _login_page(request, "That API key is not valid.", 401)
    response = RedirectResponse("/dashboard", status.HTTP_303_SEE_OTHER)
    set_session(request, response, api_key.strip())
    return response


@router.post("/logout")
async def logout(user: UserDep, csrf: Annotated[str, Form()] = "") -> Response:
    response = RedirectResponse("/dashboard/login", status.HTTP_303_SEE_OTHER)
    if csrf_valid(user, csrf):
        clear_session(response)
    return response


@router.get("")
async def overview_page(request: Request, user: UserDep, queues: QueuesDep) -> Response:
    return page(request, "overview.html", {"user": user, "queues": await overview(queues)})


@router.get("/queues/{queue}")
async def queue_page(
    request: Request,
    queue: str,
    user: UserDep,
    queues: QueuesDep,
    state: JobState = JobState.WAITING,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
    job_id: Annotated[str, Query(alias="id", max_length=300)] = "",
    message: Annotated[str, Query(alias="msg", max_length=300)] = "",
) -> Response:
    name = queues.known_queue(queue)
    require_read(user.principal, name)
    search_miss = ""
    if job_id.strip():
        try:
            record = await queues.get_job(job_id.strip())
        except JobNotFoundError:
            record = None
        if record is not None and record.queue == name.value:
            return RedirectResponse(f"/dashboard/jobs/{record.id}", status.HTTP_303_SEE_OTHER)
        search_miss = job_id.strip()
    jobs = await queues.list_jobs(name.value, state, PAGE_SIZE, cursor)
    summary = await queue_overview(queues, name)
    context = {
        "user": user,
        "queue": summary,
        "state": state,
        "states": list(JobState),
        "page": jobs,
        "cursor": int(cursor or 0),
        "page_size": PAGE_SIZE,
        "search_miss": search_miss,
        "message": message,
        "can_add": user.principal.at_least(access_of(name).enqueue),
        "queue_actions": queue_actions_for(user, summary.paused),
        "cleanable": CLEANABLE,
    }
    return page(request, "queue.html", context)


@router.get("/jobs/{job_id}")
async def job_page(
    request: Request,
    job_id: str,
    user: UserDep,
    queues: QueuesDep,
    message: Annotated[str, Query(alias="msg", max_length=300)] = "",
) -> Response:
    record = await queues.get_job(job_id)
    require_read(user.principal, record.queue)
    context = {
        "user": user,
        "job": record,
        "message": message,
        "actions": job_actions_for(user, record.state),
    }
    return page(request, "job.html", context)


def job_actions_for(user: DashboardUser, state: JobState) -> list[JobAction]:
    return [
        a for a in JOB_ACTIONS.values() if state in a.states and user.principal.at_least(a.role)
    ]


def queue_actions_for(user: DashboardUser, paused: bool) -> list[QueueAction]:
    return [
        a
        for a in QUEUE_ACTIONS.values()
        if user.principal.at_least(a.role) and a.when_paused in (None, paused)
    ]
