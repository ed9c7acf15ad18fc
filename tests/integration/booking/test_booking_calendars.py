"""What anyone can look at: availability of a facility over a range, and iCalendar feeds (RFC 5545) per unit
and per person, parsed back with the icalendar library."""

from __future__ import annotations

from datetime import timedelta

import httpx
import icalendar

from plugins.booking.schemas import FacilityUpdate
from plugins.booking.services import facilities
from tests.integration.booking.helpers import Gym, Town, at, open_day


async def test_availability_is_public_and_follows_hours_closed_days_and_bookings(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    day = open_day()
    closed = day + timedelta(days=1)
    async with town.session() as session:
        await facilities.update_facility(session, gym.facility_id, FacilityUpdate(closed_dates=[closed]))
    me = await town.headers("taro")
    assert (
        await client.post(
            town.url("/reservations"),
            json={
                "unit_id": str(gym.half_a),
                "starts_at": at(day, 10).isoformat(),
                "ends_at": at(day, 11).isoformat(),
            },
            headers=me,
        )
    ).status_code == 201
    answer = await client.get(
        town.url(f"/facilities/{gym.facility_id}/availability"),
        params={"first": day.isoformat(), "last": closed.isoformat()},
    )
    assert answer.status_code == 200
    by_unit = {u["name"]: u["days"] for u in answer.json()["units"]}
    assert set(by_unit) == {"アリーナ全面", "アリーナA面", "アリーナB面", "会議室", "テニスコート"}

    def status(unit: str, index: int, hour: str) -> str:
        return {s["starts_at"][11:16]: s["status"] for s in by_unit[unit][index]["slots"]}[hour]

    assert status("アリーナA面", 0, "10:00") == "taken"
    assert status("アリーナ全面", 0, "10:00") == "taken"  # a part is booked
    assert status("アリーナB面", 0, "10:00") == "free"
    assert status("アリーナ全面", 0, "11:00") == "free"
    assert [s["name"] for s in by_unit["会議室"][0]["slots"]] == ["午前", "午後", "夜間"]
    assert by_unit["アリーナ全面"][1] == {"date": closed.isoformat(), "closed": True, "slots": []}
    too_long = await client.get(
        town.url(f"/facilities/{gym.facility_id}/availability"),
        params={"first": day.isoformat(), "last": (day + timedelta(days=200)).isoformat()},
    )
    assert too_long.status_code == 422


async def test_unit_and_person_feeds_parse_back_with_stable_uids_in_tokyo_time(
    town: Town, gym: Gym, client: httpx.AsyncClient
) -> None:
    day = open_day()
    me = await town.headers("taro")
    held = (
        await client.post(
            town.url("/reservations"),
            json={
                "unit_id": str(gym.whole),
                "starts_at": at(day, 18).isoformat(),
                "ends_at": at(day, 20).isoformat(),
            },
            headers=me,
        )
    ).json()
    await client.post(town.url(f"/reservations/{held['id']}/confirm"), headers=me)

    public = await client.get(town.url(f"/units/{gym.half_b}/calendar.ics"))
    assert public.status_code == 200 and public.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(public.content)
    [event] = calendar.walk("VEVENT")
    assert str(event["uid"]) == f"{held['id']}@miki.booking.tsunagu"
    start = event.decoded("dtstart")
    assert start == at(day, 18) and start.tzinfo is not None and start.utcoffset() == timedelta(hours=9)
    assert event.decoded("dtend") == at(day, 20)
    assert event["dtstart"].params["TZID"] == "Asia/Tokyo"
    [zone] = calendar.walk("VTIMEZONE")
    assert zone["tzid"] == "Asia/Tokyo"
    assert "taro" not in public.text and "予約済み" in str(event["summary"])

    mine = await client.get(town.url("/reservations/mine/calendar.ics"), headers=me)
    [own] = icalendar.Calendar.from_ical(mine.content).walk("VEVENT")
    assert str(own["uid"]) == str(event["uid"])  # the same booking keeps the same UID in every feed
    assert str(own["status"]) == "CONFIRMED" and "アリーナ全面" in str(own["summary"])
    again = icalendar.Calendar.from_ical(
        (await client.get(town.url("/reservations/mine/calendar.ics"), headers=me)).content
    )
    assert [str(e["uid"]) for e in again.walk("VEVENT")] == [str(own["uid"])]
    assert (await client.get(town.url("/reservations/mine/calendar.ics"))).status_code == 401
