"""What each email template needs: its variables and which of them are links. The one set of rules
producers check before enqueueing (the API answers 422) and the worker's renderer enforces (the
link filter calls `check_http_url`); tests render every template against this table."""

from dataclasses import dataclass
from urllib.parse import urlsplit

PRODUCER_CONTEXT = {"producer": True}
"""Validation context for producers: also check what the worker would otherwise refuse only when it
runs the job. The worker validates without it, so a job queued by an older producer still fails
with the renderer's own reason."""


@dataclass(frozen=True, slots=True)
class TemplateVariables:
    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()
    """Rendered as links: each must be an absolute http(s) URL."""


TEMPLATE_VARIABLES: dict[str, TemplateVariables] = {
    "welcome": TemplateVariables(
        required=frozenset({"name", "action_url"}), links=frozenset({"action_url"})
    ),
    "invitation": TemplateVariables(
        required=frozenset({"inviter_name", "organization_name", "accept_url"}),
        links=frozenset({"accept_url"}),
    ),
    "notification": TemplateVariables(
        required=frozenset({"message"}),
        optional=frozenset({"action_url", "action_label"}),
        links=frozenset({"action_url"}),
    ),
}


def check_http_url(value: str) -> str:
    """Only absolute http(s) URLs, so no `javascript:` or `data:` href reaches an email."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an absolute http(s) URL: {value[:200]!r}")
    return value


def template_problems(template: str, variables: dict[str, str]) -> list[str]:
    """Every reason the template would refuse these variables; empty when it will render."""
    spec = TEMPLATE_VARIABLES.get(template)
    if spec is None:
        return [f"unknown template {template!r}"]
    problems = [
        f"template {template!r} needs the variable {name!r}"
        for name in sorted(spec.required - variables.keys())
    ]
    for name in sorted(spec.links & variables.keys()):
        try:
            check_http_url(variables[name])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return problems
