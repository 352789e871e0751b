"""The shipped templates: both parts render, HTML escapes, missing variables and bad links fail."""

from importlib.resources import files
from typing import get_args

import pytest
from forgestack_shared.jobs.notification_email import EmailTemplate
from forgestack_worker.services.email_rendering import (
    TEMPLATE_DIR,
    TEMPLATE_PACKAGE,
    EmailRenderer,
    TemplateRenderError,
)

VARIABLES: dict[str, dict[str, str]] = {
    "welcome": {"name": "Jane", "action_url": "https://app.example.com/start"},
    "invitation": {
        "inviter_name": "Omar",
        "organization_name": "Acme",
        "accept_url": "https://app.example.com/invites/abc",
    },
    "notification": {"message": "Your export is ready."},
}


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def test_every_template_the_contract_names_has_both_parts_in_the_package() -> None:
    folder = files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR)
    for name in get_args(EmailTemplate):
        assert folder.joinpath(f"{name}.html").is_file(), name
        assert folder.joinpath(f"{name}.txt").is_file(), name
    assert set(VARIABLES) == set(get_args(EmailTemplate))


@pytest.mark.parametrize("template", sorted(VARIABLES))
def test_each_template_renders_its_variables_in_both_parts_inside_the_layout(
    renderer: EmailRenderer, template: str
) -> None:
    rendered = renderer.render(template, subject="Hello there", variables=VARIABLES[template])
    for value in VARIABLES[template].values():
        assert value in rendered.html
        assert value in rendered.text
    assert "<title>Hello there</title>" in rendered.html
    assert "Sent by ForgeStack" in rendered.html
    assert "Sent by ForgeStack" in rendered.text
    assert "<" not in rendered.text


def test_html_escapes_markup_in_variables_and_text_keeps_it_verbatim(
    renderer: EmailRenderer,
) -> None:
    variables = {**VARIABLES["welcome"], "name": '<script>alert("x")</script>'}
    rendered = renderer.render("welcome", subject="<b>hi</b>", variables=variables)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in rendered.html
    assert "<title>&lt;b&gt;hi&lt;/b&gt;</title>" in rendered.html
    assert '<script>alert("x")</script>' in rendered.text


def test_a_quote_in_a_link_cannot_leave_the_href_attribute(renderer: EmailRenderer) -> None:
    url = 'https://app.example.com/?a="onmouseover="alert(1)'
    rendered = renderer.render("welcome", subject="s", variables={"name": "J", "action_url": url})
    assert 'href="https://app.example.com/?a=&#34;onmouseover=&#34;alert(1)"' in rendered.html


def test_a_missing_variable_names_the_variable(renderer: EmailRenderer) -> None:
    with pytest.raises(TemplateRenderError) as info:
        renderer.render("invitation", subject="s", variables={"inviter_name": "Omar"})
    assert str(info.value) == (
        "template 'invitation' needs a variable the job did not give: "
        "'organization_name' is undefined"
    )


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,hi", "//evil.example.com", "/relative"]
)
def test_links_must_be_absolute_http_urls(renderer: EmailRenderer, url: str) -> None:
    with pytest.raises(TemplateRenderError, match="not an absolute http"):
        renderer.render("welcome", subject="s", variables={"name": "J", "action_url": url})


def test_notification_link_is_optional_and_its_label_defaults(renderer: EmailRenderer) -> None:
    plain = renderer.render("notification", subject="s", variables={"message": "m"})
    assert "href=" not in plain.html
    linked = renderer.render(
        "notification",
        subject="s",
        variables={"message": "m", "action_url": "https://app.example.com/x"},
    )
    assert 'href="https://app.example.com/x"' in linked.html
    assert "Open: https://app.example.com/x" in linked.text
