"""Residents with a signed-in browser session, for scenarios whose routes act for a person (booking, paying).

A key acts for a system, not a person, so the booking and payment routes refuse it; these scenarios send what a
resident's browser sends: the session cookie and, on a state-changing request, the session's CSRF token.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec

from core.identity.authn import CSRF_HEADER, SESSION_COOKIE
from core.identity.models import Account, RoleGrant
from core.identity.sessions import start_session
from core.platform import Platform
from core.tenancy.registry import Municipality


class Person(msgspec.Struct, kw_only=True, frozen=True):
    account_id: uuid.UUID
    headers: dict[str, str]
    """Cookie and CSRF token of the person's session."""


async def residents(
    platform: Platform, municipality: Municipality, count: int, role: str = "resident"
) -> list[Person]:
    """``count`` people living in ``municipality``, holding ``role`` there, each signed in once."""
    accounts = [
        Account(
            id=uuid.uuid4(),
            email=f"bench-{uuid.uuid4().hex[:12]}@example.jp",
            display_name="bench",
            residence_municipality_id=municipality.id,
        )
        for _ in range(count)
    ]
    async with platform.sessions.platform() as session:
        session.add_all(accounts)
    people = []
    async with platform.sessions.tenant(municipality.id) as session:
        for account in accounts:
            session.add(RoleGrant(account_id=account.id, role=role))
            token, row = await start_session(session, municipality, account.id)
            headers = {"cookie": f"{SESSION_COOKIE}={token}", CSRF_HEADER: row.csrf_token}
            people.append(Person(account_id=account.id, headers=headers))
    return people


def spread(municipalities: Sequence[Municipality], total: int) -> list[tuple[int, Municipality]]:
    """Request ``n`` of ``total`` goes to ``municipalities[n % len]``: (its index within that municipality, it)."""
    return [(n // len(municipalities), municipalities[n % len(municipalities)]) for n in range(total)]
