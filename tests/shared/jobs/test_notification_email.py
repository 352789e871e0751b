"""The notification email contract on its own: mailbox parsing and the single-line rules."""

import random
import string

import pytest
from forgestack_shared.jobs.notification_email import (
    NotificationEmailData,
    new_message_id,
    parse_mailbox,
)
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("jane@example.com", "jane@example.com"),
        ("Jane Doe <Jane@Example.COM>", "Jane Doe <Jane@example.com>"),
        ('"Doe, Jane" <jane@example.com>', '"Doe, Jane" <jane@example.com>'),
        ("Mr. Smith <smith@example.com>", '"Mr. Smith" <smith@example.com>'),
        ("Jörg <jörg@bücher.example>", "Jörg <jörg@xn--bcher-kva.example>"),
        ("  <jane@example.com>  ", "jane@example.com"),
    ],
)
def test_addresses_are_stored_normalised(raw: str, normalised: str) -> None:
    data = NotificationEmailData(to=raw, subject="s", template="welcome")
    assert data.to == normalised


def test_the_configured_sender_may_use_a_reserved_domain() -> None:
    with pytest.raises(ValueError, match="special-use or reserved"):
        parse_mailbox("ForgeStack <no-reply@forgestack.invalid>")
    address = parse_mailbox("ForgeStack <no-reply@forgestack.invalid>", deliverable=False)
    assert address.addr_spec == "no-reply@forgestack.invalid"


@pytest.mark.parametrize("separator", ["\r", "\n", "\x00", "\t", "\u2028", "\u2029", "\x85"])
def test_no_control_character_gets_into_a_subject_or_an_address(separator: str) -> None:
    with pytest.raises(ValidationError):
        NotificationEmailData(to="a@example.com", subject=f"a{separator}b", template="welcome")
    with pytest.raises(ValidationError):
        NotificationEmailData(to=f"A{separator}B <a@example.com>", subject="s", template="welcome")


@pytest.mark.parametrize("raw", ["jane@", "2fgél@", "owEB3J:cG;I,H8qZ", " .MdN]0eEo6?:[3RN<,pjG"])
def test_input_that_crashes_the_stdlib_parser_is_a_value_error(raw: str) -> None:
    """Python 3.11's header parser raises IndexError, AttributeError, TypeError on these."""
    with pytest.raises(ValueError, match="not a valid address"):
        parse_mailbox(raw)


def test_random_input_is_either_an_address_or_a_value_error() -> None:
    """Nothing the stdlib parser can trip on (it raised IndexError on `jane@`) escapes as a crash."""
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + ' <>@.,;:"\\()[]=?\r\n\t'
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        try:
            address = parse_mailbox(raw)
        except ValueError:
            continue
        assert "\r" not in str(address)
        assert "\n" not in str(address)


def test_each_job_gets_its_own_message_id() -> None:
    first = NotificationEmailData(to="a@example.com", subject="s", template="welcome")
    second = NotificationEmailData(to="a@example.com", subject="s", template="welcome")
    assert first.message_id != second.message_id
    assert new_message_id().endswith("@forgestack>")
