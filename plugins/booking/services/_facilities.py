"""Facilities and their units: create, change, list, import from open data, export as 公共施設一覧.

Every function takes a session bound to one municipality; a facility or unit of another municipality is simply
not found. Changes are audited in the same transaction as done by ``actor``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record
from core.exceptions import InvalidInput, NotFound
from plugins.booking.models import Facility, Occupancy, Unit
from plugins.booking.schemas import (
    FacilityCreate,
    FacilityOut,
    FacilityUpdate,
    FixedSlot,
    UnitCreate,
    UnitOut,
    UnitUpdate,
)
from plugins.booking.services._calendar import DayRules, parse_time, validate_fixed_slots, validate_hours
from plugins.booking.services._opendata import FacilityRecord, ParsedFile

KINDS = (
    "tennis_court",
    "gymnasium",
    "community_center",
    "library",
    "ground",
    "hall",
    "room",
    "pool",
    "other",
)
DEFAULT_UNIT = "施設全体"
"""The unit an imported facility gets, so it can be booked as a whole until staff divide it."""


def unit_out(unit: Unit) -> UnitOut:
    return UnitOut(
        id=unit.id,
        facility_id=unit.facility_id,
        parent_id=unit.parent_id,
        name=unit.name,
        capacity=unit.capacity,
        slot_minutes=unit.slot_minutes,
        fixed_slots=[FixedSlot(**slot) for slot in unit.fixed_slots],
        setup_minutes=unit.setup_minutes,
        cleanup_minutes=unit.cleanup_minutes,
        fee_resident=unit.fee_resident,
        fee_region=unit.fee_region,
        fee_other=unit.fee_other,
        requires_approval=unit.requires_approval,
        active=unit.active,
    )


def facility_out(facility: Facility, units: Sequence[Unit]) -> FacilityOut:
    return FacilityOut(
        id=facility.id,
        name=facility.name,
        name_kana=facility.name_kana,
        kind=facility.kind,
        address=facility.address,
        phone=facility.phone,
        url=facility.url,
        latitude=facility.latitude,
        longitude=facility.longitude,
        hours=facility.hours,
        hours_exceptions=facility.hours_exceptions,
        hours_note=facility.hours_note,
        closed_on_holidays=facility.closed_on_holidays,
        closed_year_end=facility.closed_year_end,
        closed_dates=facility.closed_dates,
        cancel_deadline_days=facility.cancel_deadline_days,
        lottery_enabled=facility.lottery_enabled,
        lottery_opens_day=facility.lottery_opens_day,
        lottery_closes_day=facility.lottery_closes_day,
        description=facility.description,
        units=[unit_out(u) for u in units],
    )


def day_rules(facility: Facility) -> DayRules:
    return DayRules(
        hours=facility.hours,
        exceptions=facility.hours_exceptions,
        closed_on_holidays=facility.closed_on_holidays,
        closed_year_end=facility.closed_year_end,
        closed_dates=frozenset(facility.closed_dates),
    )


# --- reading ---------------------------------------------------------------------------------------------------


async def get_facility(session: AsyncSession, facility_id: uuid.UUID) -> Facility:
    """:raises NotFound: no such facility in this municipality."""
    facility = await session.scalar(select(Facility).where(Facility.id == facility_id))
    if facility is None:
        raise NotFound(f"no facility {facility_id}")
    return facility


async def get_unit(session: AsyncSession, unit_id: uuid.UUID) -> Unit:
    """:raises NotFound: no such unit in this municipality."""
    unit = await session.scalar(select(Unit).where(Unit.id == unit_id))
    if unit is None:
        raise NotFound(f"no unit {unit_id}")
    return unit


async def units_of(session: AsyncSession, facility_id: uuid.UUID) -> list[Unit]:
    return list(
        await session.scalars(
            select(Unit).where(Unit.facility_id == facility_id).order_by(Unit.name, Unit.id)
        )
    )


async def list_facilities(session: AsyncSession, *, kind: str | None = None) -> list[FacilityOut]:
    query = select(Facility).order_by(Facility.name, Facility.id)
    if kind is not None:
        query = query.where(Facility.kind == kind)
    facilities = list(await session.scalars(query))
    units: dict[uuid.UUID, list[Unit]] = {}
    for unit in await session.scalars(select(Unit).order_by(Unit.name, Unit.id)):
        units.setdefault(unit.facility_id, []).append(unit)
    return [facility_out(f, units.get(f.id, [])) for f in facilities]


async def describe_facility(session: AsyncSession, facility_id: uuid.UUID) -> FacilityOut:
    facility = await get_facility(session, facility_id)
    return facility_out(facility, await units_of(session, facility.id))


def descendants(units: Sequence[Unit], root: uuid.UUID) -> list[uuid.UUID]:
    """``root`` and every unit below it (children, their children …), ``root`` first."""
    children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for unit in units:
        children.setdefault(unit.parent_id, []).append(unit.id)
    found, stack = [], [root]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def ancestors(units: Sequence[Unit], unit_id: uuid.UUID) -> list[uuid.UUID]:
    """The units ``unit_id`` is part of, nearest first."""
    by_id = {u.id: u for u in units}
    found, current = [], by_id[unit_id].parent_id
    while current is not None and current not in found:
        found.append(current)
        current = by_id[current].parent_id if current in by_id else None
    return found


# --- writing ---------------------------------------------------------------------------------------------------


def _check_facility_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the fields of a create or an update. :raises InvalidInput: naming the field."""
    if "name" in values:
        values["name"] = values["name"].strip()
        if not values["name"] or len(values["name"]) > 200:
            raise InvalidInput(f"name: must be 1 to 200 characters, got {len(values['name'])}")
    if "kind" in values and values["kind"] not in KINDS:
        raise InvalidInput(f"kind: must be one of {', '.join(KINDS)}, got {values['kind']!r}")
    if "hours" in values:
        values["hours"] = validate_hours(values["hours"])
    if "hours_exceptions" in values:
        values["hours_exceptions"] = _check_exceptions(values["hours_exceptions"])
    if "closed_dates" in values:
        values["closed_dates"] = sorted(
            {d.isoformat() if isinstance(d, date) else str(d) for d in values["closed_dates"]}
        )
    if values.get("cancel_deadline_days") is not None and not 0 <= values["cancel_deadline_days"] <= 90:
        raise InvalidInput(
            f"cancel_deadline_days: must be between 0 and 90, got {values['cancel_deadline_days']}"
        )
    for field in ("lottery_opens_day", "lottery_closes_day"):
        if field in values and not 1 <= values[field] <= 28:
            raise InvalidInput(f"{field}: must be a day of the month from 1 to 28, got {values[field]}")
    for field in ("latitude", "longitude"):
        if values.get(field) is not None and not -180 <= values[field] <= 180:
            raise InvalidInput(f"{field}: out of range, got {values[field]}")
    return values


def _check_exceptions(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    allowed = {"months", "weekdays", "holidays", "opens", "closes", "closed"}
    for index, rule in enumerate(rules):
        where = f"hours_exceptions[{index}]"
        unknown = set(rule) - allowed
        if unknown:
            raise InvalidInput(
                f"{where}: unknown keys {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})"
            )
        if any(not isinstance(m, int) or not 1 <= m <= 12 for m in rule.get("months", [])):
            raise InvalidInput(f"{where}.months: months are 1 to 12")
        if any(not isinstance(d, int) or not 0 <= d <= 6 for d in rule.get("weekdays", [])):
            raise InvalidInput(f"{where}.weekdays: weekdays are 0 (Monday) to 6 (Sunday)")
        for key in ("opens", "closes"):
            if key in rule:
                parse_time(rule[key], f"{where}.{key}")
    return rules


async def create_facility(session: AsyncSession, data: FacilityCreate, *, actor: str = "cli") -> Facility:
    """:raises InvalidInput: naming the field and the rule."""
    values = _check_facility_fields(msgspec.structs.asdict(data))
    facility = Facility(id=uuid.uuid4(), **values)
    session.add(facility)
    await session.flush()
    record(
        session, actor=actor, action="booking.facility_created", target_type="facility", target_id=facility.id
    )
    return facility


async def update_facility(
    session: AsyncSession, facility_id: uuid.UUID, data: FacilityUpdate, *, actor: str = "cli"
) -> Facility:
    """:raises NotFound: no such facility here. :raises InvalidInput: naming the field."""
    facility = await get_facility(session, facility_id)
    values = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    values = _check_facility_fields(values)
    changed = sorted(k for k, v in values.items() if getattr(facility, k) != v)
    for key in changed:
        setattr(facility, key, values[key])
    if changed:
        record(
            session,
            actor=actor,
            action="booking.facility_updated",
            target_type="facility",
            target_id=facility.id,
            payload={"fields": changed},
        )
    return facility


async def add_unit(
    session: AsyncSession, facility_id: uuid.UUID, data: UnitCreate, *, actor: str = "cli"
) -> Unit:
    """Add a bookable unit; a part (``parent_id``) is blocked by whatever its parent is booked for already.

    :raises NotFound: no such facility, or a parent unit that is not the facility's.
    :raises InvalidInput: naming the field.
    """
    facility = await get_facility(session, facility_id)
    name = data.name.strip()
    if not name or len(name) > 100:
        raise InvalidInput(f"name: must be 1 to 100 characters, got {len(name)}")
    if not 1 <= data.capacity <= 10_000:
        raise InvalidInput(f"capacity: must be between 1 and 10000, got {data.capacity}")
    if data.slot_minutes is not None and data.fixed_slots:
        raise InvalidInput("slot_minutes: give N-minute slots or fixed_slots, not both")
    if data.slot_minutes is not None and not (
        5 <= data.slot_minutes <= 24 * 60 and data.slot_minutes % 5 == 0
    ):
        raise InvalidInput(f"slot_minutes: must be a multiple of 5 from 5 to 1440, got {data.slot_minutes}")
    fixed = validate_fixed_slots([msgspec.structs.asdict(s) for s in data.fixed_slots])
    for field in ("setup_minutes", "cleanup_minutes"):
        if not 0 <= getattr(data, field) <= 240:
            raise InvalidInput(f"{field}: must be between 0 and 240, got {getattr(data, field)}")
    for field in ("fee_resident", "fee_region", "fee_other"):
        if not 0 <= getattr(data, field) <= 10_000_000:
            raise InvalidInput(f"{field}: must be between 0 and 10000000 yen, got {getattr(data, field)}")
    siblings = await units_of(session, facility.id)
    if data.parent_id is not None and data.parent_id not in {u.id for u in siblings}:
        raise NotFound(f"parent_id: no unit {data.parent_id} in facility {facility.id}")
    unit = Unit(
        id=uuid.uuid4(),
        facility_id=facility.id,
        parent_id=data.parent_id,
        name=name,
        capacity=data.capacity,
        slot_minutes=None if fixed else (data.slot_minutes or 60),
        fixed_slots=fixed,
        setup_minutes=data.setup_minutes,
        cleanup_minutes=data.cleanup_minutes,
        fee_resident=data.fee_resident,
        fee_region=data.fee_region,
        fee_other=data.fee_other,
        requires_approval=data.requires_approval,
        active=True,
    )
    session.add(unit)
    await session.flush()
    if data.parent_id is not None:
        # The parent's live bookings already occupy its other parts; they now occupy this one as well.
        held = await session.scalars(select(Occupancy).where(Occupancy.unit_id == data.parent_id))
        session.add_all(
            Occupancy(
                reservation_id=o.reservation_id, unit_id=unit.id, starts_at=o.starts_at, ends_at=o.ends_at
            )
            for o in list(held)
        )
        await session.flush()
    record(
        session,
        actor=actor,
        action="booking.unit_created",
        target_type="unit",
        target_id=unit.id,
        payload={"facility": str(facility.id), "parent": str(data.parent_id) if data.parent_id else None},
    )
    return unit


async def update_unit(
    session: AsyncSession, facility_id: uuid.UUID, unit_id: uuid.UUID, data: UnitUpdate, *, actor: str = "cli"
) -> Unit:
    """Change a unit's name, capacity, fees, review or whether it takes bookings.

    :raises NotFound: no such unit in that facility here. :raises InvalidInput: naming the field.
    """
    unit = await get_unit(session, unit_id)
    if unit.facility_id != facility_id:
        raise NotFound(f"no unit {unit_id} in facility {facility_id}")
    values = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "name" in values:
        values["name"] = values["name"].strip()
        if not values["name"] or len(values["name"]) > 100:
            raise InvalidInput(f"name: must be 1 to 100 characters, got {len(values['name'])}")
    if "capacity" in values and not 1 <= values["capacity"] <= 10_000:
        raise InvalidInput(f"capacity: must be between 1 and 10000, got {values['capacity']}")
    for field in ("fee_resident", "fee_region", "fee_other"):
        if field in values and not 0 <= values[field] <= 10_000_000:
            raise InvalidInput(f"{field}: must be between 0 and 10000000 yen, got {values[field]}")
    changed = sorted(k for k, v in values.items() if getattr(unit, k) != v)
    for key in changed:
        setattr(unit, key, values[key])
    if changed:
        record(
            session,
            actor=actor,
            action="booking.unit_updated",
            target_type="unit",
            target_id=unit.id,
            payload={"fields": changed},
        )
    return unit


# --- import ----------------------------------------------------------------------------------------------------

IMPORTED_FIELDS = (
    "name", "name_kana", "kind", "address", "phone", "url", "latitude", "longitude", "hours", "hours_exceptions",
    "hours_note", "closed_year_end", "description",
)  # fmt: skip
"""What an import sets; everything else (closed days, lottery, units, fees) is the staff's and left alone."""


class ImportOutcome(msgspec.Struct, kw_only=True, frozen=True):
    created: list[str]
    updated: list[str]
    unchanged: int


async def apply_import(
    session: AsyncSession,
    parsed: ParsedFile,
    *,
    actor: str = "cli",
    source: str = "",
    progress: Callable[[FacilityRecord], None] | None = None,
) -> ImportOutcome:
    """Create or update one facility per record, recognised by its source key: importing twice changes nothing.

    A new facility gets one unit, the whole facility, with 60-minute slots and no fee, so staff can divide and
    price it later. The import is audited as one event with the counts (no row data).
    """
    keys = [r.source_key for r in parsed.records]
    existing = {
        f.source_key: f for f in await session.scalars(select(Facility).where(Facility.source_key.in_(keys)))
    } if keys else {}  # fmt: skip
    created: list[str] = []
    updated: list[str] = []
    unchanged = 0
    new_units: list[Unit] = []
    for rec in parsed.records:
        values = {field: getattr(rec, field) for field in IMPORTED_FIELDS}
        facility = existing.get(rec.source_key)
        if facility is None:
            facility = Facility(id=uuid.uuid4(), source_key=rec.source_key, **values)
            session.add(facility)
            new_units.append(
                Unit(
                    id=uuid.uuid4(),
                    facility_id=facility.id,
                    name=DEFAULT_UNIT,
                    slot_minutes=60,
                    fixed_slots=[],
                )
            )
            existing[rec.source_key] = facility
            created.append(rec.source_key)
        else:
            changed = [k for k, v in values.items() if getattr(facility, k) != v]
            for key in changed:
                setattr(facility, key, values[key])
            if changed:
                updated.append(rec.source_key)
            else:
                unchanged += 1
        if progress is not None:
            progress(rec)
    await session.flush()
    session.add_all(new_units)
    await session.flush()
    if created or updated:
        record(
            session,
            actor=actor,
            action="booking.facilities_imported",
            target_type="import",
            target_id=source[:200] or parsed.format,
            payload={
                "format": parsed.format,
                "created": len(created),
                "updated": len(updated),
                "unchanged": unchanged,
                "skipped": len(parsed.skipped),
            },
        )
    return ImportOutcome(created=created, updated=updated, unchanged=unchanged)


async def all_facilities(session: AsyncSession) -> list[Facility]:
    return list(await session.scalars(select(Facility).order_by(Facility.name, Facility.id)))
