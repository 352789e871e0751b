"""Organisations: the tenants every other row belongs to."""

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from .models import Organisation


async def find_organisation(session: AsyncSession, name: str) -> Organisation | None:
    return (await session.exec(select(Organisation).where(Organisation.name == name))).first()


async def get_or_create_organisation(session: AsyncSession, name: str) -> tuple[Organisation, bool]:
    """(organisation, created). Needs a service context: before it exists no tenant owns it."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("organisation name must be 1 to 200 characters")
    existing = await find_organisation(session, name)
    if existing is not None:
        return existing, False
    org = Organisation(name=name)
    session.add(org)
    await session.flush()
    return org, True


async def count_organisations(session: AsyncSession) -> int:
    return int((await session.exec(select(sa.func.count()).select_from(Organisation))).one())
