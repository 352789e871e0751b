"""The roles an organisation's API key can have, apart from the tables so that code which only
names a role does not load SQLModel."""

from enum import StrEnum


class ApiKeyRole(StrEnum):
    """What a key may do inside its organisation, and only there (`admin` included): the
    operator key from settings is the only cross-organisation caller."""

    MEMBER = "member"
    OWNER = "owner"
    ADMIN = "admin"
