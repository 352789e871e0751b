"""The notification email job: who gets which template with which variables.

Addresses and the subject are checked here, before anything reaches Redis, because they become
message headers: a CR or LF that got through would let a caller add headers (Bcc, ...) of their own.
"""

import unicodedata
import uuid
from datetime import datetime
from email.errors import InvalidHeaderDefect
from functools import cache
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

if TYPE_CHECKING:
    from email.headerregistry import Address, AddressHeader, HeaderRegistry

EmailTemplate = Literal["welcome", "invitation", "notification"]
"""Each name is a pair of files, `<name>.html` and `<name>.txt`, beside the worker's handler."""

MAX_VARIABLES = 50
MAX_VARIABLE_LENGTH = 10_000
MAX_SUBJECT_LENGTH = 500
"""Well under RFC 5322's 998-octet line limit even once encoded."""


@cache
def _headers() -> "HeaderRegistry":
    """Imported on first use: the email package's header parser is a few ms of a worker's start
    before its first claim, and only a notification email's validation needs it (the worker's
    email client loads it with the other clients, beside the first claims)."""
    from email.headerregistry import HeaderRegistry

    return HeaderRegistry()


def has_control_chars(value: str) -> bool:
    """CR, LF, NUL, tab, Unicode line separators: nothing a one-line header may hold."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


def _single_line(value: str) -> str:
    if has_control_chars(value):
        raise ValueError("must be a single line: control characters (CR, LF, ...) are not allowed")
    # The email package decodes RFC 2047 encoded words, so `=?utf-8?q?=0D=0A?=` would smuggle a
    # line break into the header it builds: check what it will actually write.
    if has_control_chars(str(_headers()("Subject", value))):
        raise ValueError("must be a single line: an encoded word decodes to a control character")
    return value


def _parse_address_header(value: str) -> "AddressHeader":
    from email.headerregistry import AddressHeader

    try:
        header = _headers()("To", value)
    except ValueError:
        raise
    except Exception as exc:
        # The stdlib parser has crashed on malformed input (IndexError on "jane@" in 3.11):
        # untrusted input must come out as a validation error, never as a 500.
        raise ValueError(f"not a valid address ({type(exc).__name__} in the parser)") from exc
    assert isinstance(header, AddressHeader)
    invalid = [d for d in header.defects if isinstance(d, InvalidHeaderDefect)]
    if invalid:
        raise ValueError(f"not a valid address: {invalid[0]}")
    return header


def parse_mailbox(value: str, *, deliverable: bool = True) -> "Address":
    """One address with an optional display name (`Jane Doe <jane@example.com>`), normalised.

    Raises ValueError for anything else: lists, groups, malformed syntax, control characters.
    `deliverable=False` skips email-validator's domain rules, for the configured sender whose
    default lives under the reserved `.invalid` domain.
    """
    if has_control_chars(value):
        raise ValueError("control characters (CR, LF, ...) are not allowed in an address")
    header = _parse_address_header(value)
    if len(header.addresses) != 1 or header.groups[0].display_name is not None:
        raise ValueError("exactly one address is allowed (no lists or groups)")
    (address,) = header.addresses
    if has_control_chars(address.display_name):
        raise ValueError("the display name decodes to control characters")
    if not deliverable:
        return address
    # Imported on first use: compiling its RFC patterns is about 5% of what a worker imports
    # before its first claim, and a worker that never sends email never needs it.
    import email_validator

    try:
        checked = email_validator.validate_email(address.addr_spec, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"not a valid address: {exc}") from exc
    from email.headerregistry import Address

    # The ASCII (IDNA) domain: a Unicode domain would need SMTPUTF8 from every server on the way,
    # and the email package would write it as an encoded word, which no addr-spec may contain.
    return Address(
        display_name=address.display_name, username=checked.local_part, domain=checked.ascii_domain
    )


def _mailbox(value: str) -> str:
    return str(parse_mailbox(value))


Mailbox = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=500),
    AfterValidator(_mailbox),
]
"""An address as a string, kept in its normalised RFC 5322 form (display name quoted if needed)."""

Subject = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SUBJECT_LENGTH),
    AfterValidator(_single_line),
]

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VariableValue = Annotated[str, StringConstraints(max_length=MAX_VARIABLE_LENGTH)]
Variables = Annotated[
    dict[VariableName, VariableValue],
    Field(
        max_length=MAX_VARIABLES,
        description="Values the template renders (escaped in HTML); a missing one fails the job.",
    ),
]


def new_message_id() -> str:
    """RFC 5322 Message-ID made by the producer, so every retry of one job sends the same id."""
    return f"<{uuid.uuid4().hex}@forgestack>"


class NotificationEmailContent(BaseModel):
    """What a caller says about an email; the job adds its Message-ID, the API its idempotency."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    to: Mailbox = Field(description="One recipient; a display name is allowed: `Jane <j@x.org>`.")
    subject: Subject
    template: EmailTemplate
    variables: Variables = Field(default_factory=dict)
    reply_to: Mailbox | None = None

    @field_validator("variables")
    @classmethod
    def _fit_the_template(cls, variables: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """Producers only (see PRODUCER_CONTEXT): the worker's renderer is the check at run time."""
        # Imported here: the worker loads the template table with its renderer, on a thread
        # beside its first claims, rather than with the catalog (forgestack_worker.resources).
        from .email_templates import PRODUCER_CONTEXT, template_problems

        template = info.data.get("template")
        if info.context != PRODUCER_CONTEXT or template is None:
            return variables
        problems = template_problems(template, variables)
        if problems:
            raise ValueError("; ".join(problems))
        return variables


class NotificationEmailData(NotificationEmailContent):
    message_id: str = Field(
        default_factory=new_message_id,
        pattern=r"^<[A-Za-z0-9._+=-]{1,100}@[A-Za-z0-9.-]{1,100}>$",
        description="The Message-ID header: the same on every try, so duplicates are recognisable.",
    )


class NotificationEmailResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    message_id: str
    accepted: list[str] = Field(description="Envelope recipients the SMTP server accepted.")
    smtp_response: str = Field(description="The server's answer to DATA (often its queue id).")
    sent_at: datetime
