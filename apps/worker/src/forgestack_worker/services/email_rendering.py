"""Renders an email template pair (`<name>.html`, `<name>.txt`) from `handlers/templates/`.

HTML is autoescaped, so a variable holding `<script>` arrives as text. Undefined variables are errors
(StrictUndefined): a half-rendered email with blanks is worse than a failed job that names the gap.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from forgestack_shared.jobs.email_templates import check_http_url

if TYPE_CHECKING:
    from jinja2 import BaseLoader

TEMPLATE_PACKAGE = "forgestack_worker"
TEMPLATE_DIR = "handlers/templates"


class TemplateRenderError(Exception):
    """The template cannot render with the job's variables; retrying cannot change that."""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    html: str
    text: str


def http_url(value: object) -> str:
    """Jinja filter for links, with the rule producers check too (`check_http_url`)."""
    try:
        return check_http_url(str(value))
    except ValueError as exc:
        raise TemplateRenderError(str(exc)) from exc


class EmailRenderer:
    """Compiles each template once and keeps it; safe to share across concurrent jobs."""

    def __init__(self, loader: "BaseLoader | None" = None) -> None:
        # Jinja2 is imported by the first renderer, not with the worker: most workers start,
        # claim and run many jobs before any email (or never render one).
        from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

        self._env = Environment(
            loader=loader or PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_DIR),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["http_url"] = http_url

    def render(self, template: str, *, subject: str, variables: Mapping[str, str]) -> RenderedEmail:
        """Both parts of `template`; `subject` is in the context for the layouts' titles."""
        from jinja2 import TemplateError, UndefinedError

        context = {**variables, "subject": subject}
        try:
            html = self._env.get_template(f"{template}.html").render(context)
            text = self._env.get_template(f"{template}.txt").render(context)
        except UndefinedError as exc:
            raise TemplateRenderError(
                f"template {template!r} needs a variable the job did not give: {exc.message}"
            ) from exc
        except TemplateError as exc:
            raise TemplateRenderError(f"template {template!r} failed: {exc}") from exc
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"template {template!r}: {exc}") from exc
        return RenderedEmail(html=html, text=text.strip() + "\n")


@cache
def default_renderer() -> EmailRenderer:
    """One renderer per process, so templates are compiled once, not once per job."""
    return EmailRenderer()
