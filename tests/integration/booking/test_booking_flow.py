"""The booking flow over HTTP: hold (仮予約) → confirmed, review (審査), cancellation until the deadline, expiry
of unconfirmed holds by the workflow's timer, staff blocks; each step audited and the person notified."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from core.audit import AuditEvent
from core.exceptions import InvalidInput
from core.identity.principal import Principal
from core.notifications.models import Notification
from core.workflow import fire_timer
from plugins.booking.models import Reservation
from plugins.booking.schemas import ReservationCreate
from plugins.booking.services import reservations
from plugins.booking.workflow import RESERVATION
from tests.integration.booking.helpers import Gym, Town, at, occupancy_count, open_day


def slot(unit: uuid.UUID, day: object, hour: int, hours: int = 1) -> dict[str, str]:
    return {
        "unit_id": str(unit),
        "starts_at": at(day, hour).isoformat(),
        "ends_at": at(day, hour + hours).isoformat(),
    }  # type: ignore[arg-type]


async def notifications(town: Town, name: str) -> list[Notification]:
    async with town.session() as session:
        return list(
            await session.scalars(
                select(Notification)
                .where(Notification.account_id == town.accounts[name])
                .order_by(Notification.created_at)
            )
        )


async def test_a_resident_holds_then_confirms_and_is_notified(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    me = await town.headers("taro")
    held = await client.post(town.url("/reservations"), json=slot(gym.whole, open_day(), 10, 2), headers=me)
    assert held.status_code == 201, held.text
    body = held.json()
    assert (body["state"], body["fee"], body["person_class"]) == ("held", 2000, "resident")

    confirmed = await client.post(
        town.url(f"/reservations/{body['id']}/confirm"), json={"version": 1}, headers=me
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "confirmed"

    [message] = await notifications(town, "taro")
    assert message.template == "booking.confirmed"
    assert "町民体育館 アリーナ全面" in message.subject and "2000" in message.body
    mine = (await client.get(town.url("/reservations/mine"), headers=me)).json()
    assert [r["id"] for r in mine] == [body["id"]]
    async with town.session() as session:
        actions = list(
            await session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == body["id"]))
        )
    assert actions == ["booking.reservation_start", "booking.reservation_confirm"]


async def test_fees_follow_where_the_person_lives(town: Town, gym: Gym, client: httpx.AsyncClient) -> None:
    day = open_day()
    region = await town.headers("from_takamatsu", residence="takamatsu")
    elsewhere = await town.headers("visitor", residence="elsewhere")
    a = (await client.post(town.url("/reservations"), json=slot(gym.whole, day, 10), headers=region)).json()
    b = (
        await client.post(town.url("/reservations"), json=slot(gym.whole, day, 11), headers=elsewhere)
    ).json()
    assert (a["person_class"], a["fee"]) == ("region", 1500)
    assert (b["person_class"], b["fee"]) == ("other", 2000)


async def test_a_unit_needing_review_is_submitted_and_staff_approve_it(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    me = await town.headers("taro")
    staff = await town.headers("clerk", roles=("staff",))
    held = (
        await client.post(
            town.url("/reservations"),
            json={
                **slot(gym.room, open_day(), 13),
                "ends_at": at(open_day(), 17).isoformat(),
                "exemption": "disability",
            },
            headers=me,
        )
    ).json()
    assert held["needs_review"] and held["fee"] == 400  # 800 yen, half off for the exemption
    refused = await client.post(town.url(f"/reservations/{held['id']}/confirm"), headers=me)
    assert refused.status_code == 422 and "review" in refused.json()["detail"]
    assert (await client.post(town.url(f"/reservations/{held['id']}/submit"), headers=me)).json()[
        "state"
    ] == "review"
    assert (await client.post(town.url(f"/reservations/{held['id']}/approve"), headers=me)).status_code == 403
    approved = await client.post(town.url(f"/reservations/{held['id']}/approve"), headers=staff)
    assert approved.status_code == 200 and approved.json()["state"] == "confirmed"
    assert [n.template for n in await notifications(town, "taro")] == ["booking.confirmed"]


async def test_a_lost_race_on_a_transition_names_the_current_state(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    me = await town.headers("taro")
    held = (
        await client.post(town.url("/reservations"), json=slot(gym.whole, open_day(), 10), headers=me)
    ).json()
    assert (await client.post(town.url(f"/reservations/{held['id']}/confirm"), headers=me)).status_code == 200
    again = await client.post(
        town.url(f"/reservations/{held['id']}/confirm"), json={"version": 1}, headers=me
    )
    assert again.status_code == 409
    assert again.json()["state"] == "confirmed" and "cancel" in again.json()["allowed"]


async def test_someone_elses_booking_is_not_found(town: Town, gym: Gym, client: httpx.AsyncClient) -> None:
    taro, hanako = await town.headers("taro"), await town.headers("hanako")
    held = (
        await client.post(town.url("/reservations"), json=slot(gym.whole, open_day(), 10), headers=taro)
    ).json()
    assert (
        await client.post(town.url(f"/reservations/{held['id']}/cancel"), headers=hanako)
    ).status_code == 404
    assert (
        await client.post(town.url(f"/reservations/{held['id']}/confirm"), headers=hanako)
    ).status_code == 404


async def test_cancelling_frees_the_slot_and_notifies_until_the_deadline(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    me = await town.headers("taro")
    staff = await town.headers("clerk", roles=("staff",))
    soon = open_day(1)  # miki lets residents cancel until 1 day before
    late = (
        await client.post(
            town.url("/reservations"), json=slot(gym.whole, soon + timedelta(days=1), 10), headers=me
        )
    ).json()
    async with town.session() as session:  # the deadline is fixed when booked; move it into the past
        row = await session.get(Reservation, (town.id, uuid.UUID(late["id"])))
        assert row is not None
        row.cancel_until = row.created_at - timedelta(minutes=1)
    refused = await client.post(town.url(f"/reservations/{late['id']}/cancel"), headers=me)
    assert refused.status_code == 422 and "deadline" in refused.json()["detail"]
    revoked = await client.post(town.url(f"/reservations/{late['id']}/revoke"), headers=staff)
    assert revoked.status_code == 200 and revoked.json()["state"] == "cancelled"
    assert await occupancy_count(town) == 0
    assert [n.template for n in await notifications(town, "taro")] == ["booking.cancelled"]
    again = await client.post(
        town.url("/reservations"), json=slot(gym.whole, soon + timedelta(days=1), 10), headers=me
    )
    assert again.status_code == 201


async def test_an_unconfirmed_hold_expires_by_the_workflows_timer(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    me = await town.headers("taro")
    held = (
        await client.post(town.url("/reservations"), json=slot(gym.whole, open_day(), 10), headers=me)
    ).json()
    async with town.session() as session:
        fired = await fire_timer(
            session, RESERVATION, held["id"], state="held", version=1, transition="expire"
        )
    assert fired
    async with town.session() as session:
        row = await session.get(Reservation, (town.id, uuid.UUID(held["id"])))
        assert row is not None and row.state == "expired"
    assert await occupancy_count(town) == 0
    confirm = await client.post(town.url(f"/reservations/{held['id']}/confirm"), headers=me)
    assert confirm.status_code == 409


async def test_rules_refuse_with_the_field_and_change_nothing(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    me = await town.headers("taro")
    day = open_day()
    cases = [
        ({**slot(gym.whole, day, 10), "starts_at": at(day, 10, 30).isoformat()}, "slots"),
        (slot(gym.whole, day + timedelta(days=400), 10), "resident bookings open 60 days ahead"),
        ({**slot(gym.whole, day, 10), "exemption": "friends"}, "exemption"),
        ({**slot(gym.whole, day, 10), "attendees": 5}, "capacity"),
        ({**slot(gym.whole, day, 10), "starts_at": "2026-12-05T10:00:00"}, "time zone"),
    ]
    for body, words in cases:
        answer = await client.post(town.url("/reservations"), json=body, headers=me)
        assert answer.status_code == 422, answer.text
        assert words in answer.json()["detail"], answer.text
    assert await occupancy_count(town) == 0


async def test_windows_notice_and_the_monthly_limit_depend_on_the_person(town: Town, gym: Gym) -> None:
    resident, visitor = await town.person("taro"), await town.person("visitor", residence="elsewhere")
    day = open_day(45)  # inside a resident's 60 days, outside anyone else's 30

    async def book(who: Principal, start: datetime, now: datetime | None = None) -> None:
        async with town.session() as session:
            data = ReservationCreate(unit_id=gym.court, starts_at=start, ends_at=start + timedelta(hours=1))
            await reservations.book(session, town.ctx(now), data, account_id=who.account_id, actor=who)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match="other bookings open 30 days ahead"):
        await book(visitor, at(day, 9))
    with pytest.raises(InvalidInput, match="at least 24 hours ahead"):
        await book(resident, at(day, 9), now=at(day, 8))
    for hour in (9, 11, 13, 15):  # miki: at most 4 a month
        await book(resident, at(day, hour))
    with pytest.raises(InvalidInput, match="at most 4 bookings per person per month"):
        await book(resident, at(day, 17))
    await book(visitor, at(open_day(), 9))


async def test_staff_block_time_and_it_shows_as_taken(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    staff = await town.headers("clerk", roles=("staff",))
    resident = await town.headers("taro")
    day = open_day()
    body = {
        "unit_id": str(gym.whole),
        "starts_at": at(day, 9).isoformat(),
        "ends_at": at(day, 12).isoformat(),
        "reason": "町民運動会準備",
    }
    assert (await client.post(town.url("/blocks"), json=body, headers=resident)).status_code == 403
    blocked = await client.post(town.url("/blocks"), json=body, headers=staff)
    assert blocked.status_code == 201 and blocked.json()["kind"] == "block"
    seen = await client.get(
        town.url(f"/units/{gym.half_a}/availability"),
        params={"first": day.isoformat(), "last": day.isoformat()},
    )
    statuses = {s["starts_at"][11:16]: s["status"] for s in seen.json()["units"][0]["days"][0]["slots"]}
    assert statuses["09:00"] == statuses["11:00"] == "taken" and statuses["12:00"] == "free"


async def test_staff_reprice_and_close_a_unit(town: Town, gym: Gym, client: httpx.AsyncClient) -> None:
    staff, me = await town.headers("clerk", roles=("staff",)), await town.headers("taro")
    path = town.url(f"/facilities/{gym.facility_id}/units/{gym.whole}")
    assert (await client.patch(path, json={"fee_resident": 1200}, headers=me)).status_code == 403
    changed = await client.patch(path, json={"fee_resident": 1200}, headers=staff)
    assert changed.status_code == 200 and changed.json()["fee_resident"] == 1200
    held = await client.post(town.url("/reservations"), json=slot(gym.whole, open_day(), 10), headers=me)
    assert held.json()["fee"] == 1200
    assert (await client.patch(path, json={"active": False}, headers=staff)).json()["active"] is False
    refused = await client.post(town.url("/reservations"), json=slot(gym.whole, open_day(), 12), headers=me)
    assert refused.status_code == 422 and "not taking bookings" in refused.json()["detail"]
    seen = await client.get(town.url(f"/facilities/{gym.facility_id}/availability"))
    assert "アリーナ全面" not in {u["name"] for u in seen.json()["units"]}
    elsewhere = town.url(f"/facilities/{uuid.uuid4()}/units/{gym.whole}")
    assert (await client.patch(elsewhere, json={"active": True}, headers=staff)).status_code == 404
