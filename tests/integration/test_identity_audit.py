# ruff: noqa: F811 - pytest fixtures imported from test_login are parameters here
"""Logins, failed logins, logouts and API key creation and revocation are in the municipality's audit log.

The log carries references, not personal data: a failed login's email and address are keyed hashes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.audit import export_events, verify
from core.db import utcnow
from core.identity import apikeys
from core.platform import Platform
from tests.integration.test_login import PASSWORD, Browser, browser, cheap_hashing, make_account  # noqa: F401


async def actions(platform: Platform, slug: str) -> list[tuple[str, str, dict[str, object]]]:
    municipality = platform.municipality(slug)
    return [(e.action, e.actor, e.payload) async for e in export_events(platform, municipality.id)]


async def test_logins_and_failed_logins_are_audited_without_the_email(
    platform: Platform, browser: Browser
) -> None:
    account_id = await make_account(platform, "hanako@example.jp")

    assert (await browser.login("hanako@example.jp", PASSWORD + "x")).status_code == 401
    assert (await browser.login("nobody@example.jp")).status_code == 401
    assert (await browser.login("hanako@example.jp")).status_code == 200
    assert (await browser.request("POST", "/auth/logout", csrf=browser.csrf)).status_code in (200, 204)

    events = [e for e in await actions(platform, "miki") if e[0].startswith("core.log")]
    assert [e[0] for e in events] == [
        "core.login_failed",
        "core.login_failed",
        "core.logged_in",
        "core.logged_out",
    ]
    assert events[2][1] == events[3][1] == f"account:{account_id}"
    for _, actor, payload in events[:2]:
        assert actor == "anonymous"
        assert str(payload["email"]).startswith("hmac:") and str(payload["address"]).startswith("hmac:")
    assert events[0][2]["email"] != events[1][2]["email"]  # distinct emails stay distinguishable
    rendered = repr(events)
    assert "hanako@example.jp" not in rendered and "nobody@example.jp" not in rendered
    assert (await verify(platform, platform.municipality("miki").id)).ok


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_api_key_creation_and_revocation_are_audited_without_the_key(platform: Platform) -> None:
    miki = platform.municipality("miki")
    info, key = await apikeys.create_api_key(
        platform,
        miki,
        name="予約システム連携",
        scopes=["notices:read"],
        expires_at=utcnow() + timedelta(days=30),
    )
    await apikeys.revoke_api_key(platform, miki, info.id)
    await apikeys.revoke_api_key(platform, miki, info.id)  # idempotent: recorded once

    events = [e for e in await actions(platform, "miki") if e[0].startswith("core.api_key")]
    assert [e[0] for e in events] == ["core.api_key_created", "core.api_key_revoked"]
    assert events[0][2]["scopes"] == ["notices:read"]
    assert key not in repr(events)
    assert not [e for e in await actions(platform, "takamatsu") if e[0].startswith("core.api_key")]
