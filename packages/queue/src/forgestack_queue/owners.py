"""Job ownership: an owned job's Redis id is `<owner>~<local id>`.

Namespacing the id (instead of checking a field) makes per-owner idempotency and isolation hold by
construction: two owners may use one `job_id`, and no id an owner can name reaches another's job.
`~` is allowed in neither part, so the split is unambiguous (the scripts read the owner from it)."""

import re

OWNER_PATTERN = re.compile(r"^[A-Za-z0-9._@+=-]{1,64}$")
SEPARATOR = "~"


def validate_owner(owner: str) -> str:
    if not OWNER_PATTERN.fullmatch(owner):
        raise ValueError(f"owner {owner!r} must match {OWNER_PATTERN.pattern}")
    return owner


def full_id(owner: str | None, local_id: str) -> str:
    return local_id if owner is None else f"{owner}{SEPARATOR}{local_id}"


def local_id(owner: str | None, job_id: str) -> str | None:
    """The id as `owner` names it, or None when the job is not that owner's."""
    if owner is None:
        return job_id
    head, sep, tail = job_id.partition(SEPARATOR)
    return tail if sep and head == owner else None


def owner_of(job_id: str) -> str | None:
    head, sep, _ = job_id.partition(SEPARATOR)
    return head if sep else None
