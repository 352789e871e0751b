"""The two kinds of delivery failure the queue acts on, apart from the SMTP client: a handler
that only sorts them needs no aiosmtplib at import (it loads with the worker's resources)."""


class EmailDeliveryError(Exception):
    """Base of delivery failures; `code` is the SMTP reply code when the server gave one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientDeliveryError(EmailDeliveryError):
    """Worth another try later: the server or the network said 'not now'."""


class PermanentDeliveryError(EmailDeliveryError):
    """Another try gets the same answer: the server refused this message, sender or recipient."""
