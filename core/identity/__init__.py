"""Identity and access: one account per person for the region, roles and permissions per municipality,
browser sessions, API keys and access tokens."""

from core.identity.guards import authenticated, requires
from core.identity.passwords import check_password_policy, set_password
from core.identity.permissions import ROLES, Permission
from core.identity.principal import Principal

__all__ = [
    "ROLES",
    "Permission",
    "Principal",
    "authenticated",
    "check_password_policy",
    "requires",
    "set_password",
]
