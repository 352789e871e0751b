"""The template rules producers check agree with what the worker's renderer does with the real
templates: exactly the required variables render, each missing one fails, and every link refuses
what the renderer refuses."""

from typing import get_args

import pytest
from forgestack_shared.jobs.email_templates import (
    PRODUCER_CONTEXT,
    TEMPLATE_VARIABLES,
    template_problems,
)
from forgestack_shared.jobs.notification_email import EmailTemplate, NotificationEmailData
from forgestack_worker.services.email_rendering import EmailRenderer, TemplateRenderError
from pydantic import ValidationError

BAD_LINKS = ["javascript:alert(1)", "data:text/html,hi", "//evil.example.com", "/relative"]


def _values(names: frozenset[str]) -> dict[str, str]:
    return {name: f"https://app.example.com/{name}" for name in names}


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def test_every_template_has_rules() -> None:
    assert set(TEMPLATE_VARIABLES) == set(get_args(EmailTemplate))


@pytest.mark.parametrize("template", sorted(TEMPLATE_VARIABLES))
def test_the_required_variables_are_exactly_what_the_template_needs(
    template: str, renderer: EmailRenderer
) -> None:
    spec = TEMPLATE_VARIABLES[template]
    renderer.render(template, subject="s", variables=_values(spec.required))
    renderer.render(template, subject="s", variables=_values(spec.required | spec.optional))
    assert template_problems(template, _values(spec.required)) == []
    for missing in spec.required:
        variables = _values(spec.required - {missing})
        with pytest.raises(TemplateRenderError, match=missing):
            renderer.render(template, subject="s", variables=variables)
        assert template_problems(template, variables) == [
            f"template {template!r} needs the variable {missing!r}"
        ]


@pytest.mark.parametrize("template", sorted(TEMPLATE_VARIABLES))
@pytest.mark.parametrize("url", BAD_LINKS)
def test_a_link_the_renderer_refuses_is_refused_by_the_rules(
    template: str, url: str, renderer: EmailRenderer
) -> None:
    spec = TEMPLATE_VARIABLES[template]
    for link in spec.links:
        variables = _values(spec.required | spec.optional) | {link: url}
        with pytest.raises(TemplateRenderError, match="absolute http"):
            renderer.render(template, subject="s", variables=variables)
        (problem,) = template_problems(template, variables)
        assert problem.startswith(f"{link}: not an absolute http(s) URL")


def test_the_model_checks_the_template_for_producers_only() -> None:
    fields = {"to": "jane@example.com", "subject": "s", "template": "welcome"}
    incomplete = fields | {"variables": {"name": "Jane"}}
    NotificationEmailData.model_validate(incomplete)  # the worker's view: the renderer decides
    with pytest.raises(ValidationError, match="needs the variable 'action_url'") as caught:
        NotificationEmailData.model_validate(incomplete, context=PRODUCER_CONTEXT)
    assert caught.value.errors()[0]["loc"] == ("variables",)
