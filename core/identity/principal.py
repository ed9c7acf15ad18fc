"""Who is calling: a person (by browser session or access token), a system (by API key), or nobody."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

PrincipalKind = Literal["anonymous", "session", "token", "api_key"]


class Principal(msgspec.Struct, kw_only=True, frozen=True):
    kind: PrincipalKind = "anonymous"
    account_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    municipality_id: int | None = None
    """Where the credential was issued; a credential is only good in its own municipality."""
    roles: frozenset[str] = frozenset()
    """Roles the account holds in that municipality."""
    scopes: frozenset[str] | None = None
    """For API keys and tokens: the only scopes they may use. ``None``: not limited by scopes (a session)."""
    is_operator: bool = False

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"


ANONYMOUS = Principal()
