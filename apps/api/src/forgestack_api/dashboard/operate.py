"""The dashboard's state changes: the actions of `actions.py` and adding a job from the form.

Each is a POST with the session's CSRF token and an explicit confirmation: the page script asks
and sets `confirmed`; without script (or without the flag) the server answers with a confirmation
page instead of acting. Roles are the API's (`access.py`), and every change is audited as the
API's own routes audit it."""

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from forgestack_queue.options import JobOptions
from forgestack_shared.catalog import spec_for

from ..access import require_enqueue, require_role
from ..audit import AuditRecorder
from ..errors import JobInputError
from ..queue_service import QueueService
from .actions import JOB_ACTIONS, QUEUE_ACTIONS, ActionInputError
from .deps import QueuesDep, UserDep
from .rendering import DashboardRoute, page
from .schema_form import FormField, FormValueError, form_fields, parse_form
from .session import DashboardUser, csrf_valid

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


async def checked_form(request: Request, user: DashboardUser) -> dict[str, str]:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not csrf_valid(user, form.get("csrf", "")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or wrong")
    return form


def confirm_page(
    request: Request, user: DashboardUser, prompt: str, form: dict[str, str]
) -> Response:
    hidden = {k: v for k, v in form.items() if k not in {"csrf", "confirmed"}}
    context = {"user": user, "prompt": prompt, "action": request.url.path, "hidden": hidden}
    return page(request, "confirm.html", context)


def back_with(path: str, message: str) -> Response:
    return RedirectResponse(f"{path}?msg={quote(message)}", status.HTTP_303_SEE_OTHER)


def _recorder(queues: QueueService, user: DashboardUser, request: Request) -> AuditRecorder:
    return AuditRecorder(queues, user.principal, request)


@router.post("/jobs/{job_id}/actions/{action}")
async def job_action(
    request: Request, job_id: str, action: str, user: UserDep, queues: QueuesDep
) -> Response:
    form = await checked_form(request, user)
    spec = JOB_ACTIONS.get(action)
    if spec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action!r}")
    record = await queues.get_job(job_id)
    require_role(user.principal, spec.role, f"{spec.label.lower()} on a job")
    if form.get("confirmed") != "yes":
        return confirm_page(request, user, spec.confirm, form)
    message = await spec.run(queues, job_id)
    await _recorder(queues, user, request).record(
        spec.audit_event, "job", job_id, resource_name=record.queue
    )
    gone = action == "remove"
    return back_with(
        f"/dashboard/queues/{record.queue}" if gone else f"/dashboard/jobs/{job_id}", message
    )


@router.post("/queues/{queue}/actions/{action}")
async def queue_action(
    request: Request, queue: str, action: str, user: UserDep, queues: QueuesDep
) -> Response:
    form = await checked_form(request, user)
    name = queues.known_queue(queue)
    spec = QUEUE_ACTIONS.get(action)
    if spec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action!r}")
    require_role(user.principal, spec.role, f"{spec.label.lower()} on a queue")
    if form.get("confirmed") != "yes":
        return confirm_page(request, user, spec.confirm, form)
    try:
        message = await spec.run(queues, name.value, form)
    except ActionInputError as exc:
        return back_with(f"/dashboard/queues/{name.value}", f"Nothing done: {exc}")
    params = {p: form.get(p, "") for p in spec.params}
    await _recorder(queues, user, request).record(
        spec.audit_event, "queue", name.value, metadata=params
    )
    return back_with(f"/dashboard/queues/{name.value}", message)


def _add_fields(queue: str) -> tuple[list[FormField], list[FormField]]:
    spec = spec_for(queue)
    assert spec is not None  # known_queue ran first
    options = form_fields(JobOptions, "options", all_optional=True)
    return form_fields(spec.data_model, "data"), options


def _add_page(
    request: Request,
    user: DashboardUser,
    queue: str,
    values: dict[str, str],
    errors: list[dict[str, Any]],
    status_code: int = 200,
) -> Response:
    data_fields, option_fields = _add_fields(queue)
    context = {
        "user": user,
        "queue": queue,
        "data_fields": data_fields,
        "option_fields": option_fields,
        "values": values,
        "errors": errors,
    }
    return page(request, "add.html", context, status_code)


@router.get("/queues/{queue}/add")
async def add_form(request: Request, queue: str, user: UserDep, queues: QueuesDep) -> Response:
    name = queues.known_queue(queue)
    require_enqueue(user.principal, name)
    return _add_page(request, user, name.value, {}, [])


@router.post("/queues/{queue}/add")
async def add_job(request: Request, queue: str, user: UserDep, queues: QueuesDep) -> Response:
    form = await checked_form(request, user)
    name = queues.known_queue(queue)
    require_enqueue(user.principal, name)
    if form.get("confirmed") != "yes":
        return confirm_page(request, user, f"Add this job to {name.value}?", form)
    data_fields, option_fields = _add_fields(name.value)
    try:
        data = parse_form(data_fields, form)
        options = parse_form(option_fields, form)
        audit = _recorder(queues, user, request).job_added(name.value)
        result = await queues.add_raw(name.value, data, options, then=audit)
    except FormValueError as exc:
        return _add_page(request, user, name.value, form, [exc.error], 422)
    except JobInputError as exc:
        return _add_page(request, user, name.value, form, exc.errors, 422)
    message = "Job added." if result.created else "A job with that id exists already."
    return back_with(f"/dashboard/jobs/{result.id}", message)
