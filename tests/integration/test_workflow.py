"""Workflows through the platform, with the throwaway ``holds`` plugin enabled for miki only.

Starting and firing change the state, write the audit event and the timers in the same transaction; the timer
job expires a hold nobody confirmed, and does nothing once the hold moved on; guards refuse with 422, missing
permissions with 403, another municipality's object is simply not found, and two transitions racing on one
object (16 at once on PostgreSQL) leave exactly one winner while the rest get a 409 naming the current state.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from core.app import create_app
from core.audit import AuditEvent
from core.db.base import utcnow
from core.exceptions import Forbidden, InvalidInput, NotAuthenticated, NotFound
from core.http.problems import PROBLEM_MEDIA_TYPE
from core.identity.principal import Principal
from core.jobs import JobContext, JobRunner
from core.notifications.models import Notification
from core.outbox import OutboxMessage
from core.outbox.relay import Relay, RelayConfig
from core.platform import Platform, create_platform
from core.tenancy import service
from core.tenancy.manifest import load_manifests
from core.workflow import TransitionConflict, fire, start
from core.workflow.jobs import fire_workflow_timer
from tests import workflow_plugin
from tests.asgi import lifespan_client
from tests.cli_runner import cli_runner
from tests.conftest import MANIFESTS, TEST_SECRET_KEY
from tests.conftest import test_settings as settings_for
from tests.integration.test_access_matrix import make_account, make_key
from tests.workflow_plugin import HOLD, HOLD_FOR, Hold

A, B = "miki", "takamatsu"
TIMER_JOB = "core.fire_workflow_timer"
WAIT_MS = 10_000
"""The longest a queued job may take to run before the test fails."""


async def holds_platform(database_url: str) -> Platform:
    """A platform with the holds plugin loaded, the manifests applied, and holds enabled for A only."""
    platform = create_platform(settings_for(database_url), extra_plugins=[workflow_plugin.plugin])
    await platform.refresh(force=True)
    await service.apply_manifests(platform, load_manifests(MANIFESTS), [str(p) for p in MANIFESTS])
    await workflow_plugin.create_tables(platform)
    await service.set_plugin_enabled(platform, A, "holds", True)
    return platform


@pytest.fixture
async def platform(database_url: str) -> AsyncIterator[Platform]:
    made = await holds_platform(database_url)
    try:
        yield made
    finally:
        await workflow_plugin.drop_tables(made)
        await made.close()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with lifespan_client(create_app(platform=platform, run_jobs_in_process=False)) as test_client:
        yield test_client


def person(platform: Platform, slug: str, *roles: str) -> Principal:
    return Principal(
        kind="session",
        account_id=uuid.uuid4(),
        municipality_id=platform.municipality(slug).id,
        roles=frozenset(roles),
    )


async def new_hold(platform: Platform, slug: str = A, seats: int = 2) -> Hold:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        hold = Hold(seats=seats)
        await start(session, HOLD, hold, actor=person(platform, slug, "resident"))
    return hold


async def stored(platform: Platform, slug: str, hold_id: uuid.UUID) -> tuple[str, int]:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        hold = await session.scalar(select(Hold).where(Hold.id == hold_id))
    assert hold is not None
    return hold.state, hold.state_version


async def audit_of(platform: Platform, slug: str, hold_id: uuid.UUID) -> list[AuditEvent]:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_type == "hold", AuditEvent.target_id == str(hold_id))
            .order_by(AuditEvent.recorded_at)
        )
        return list(rows)


async def timers_of(platform: Platform, slug: str, hold_id: uuid.UUID) -> list[OutboxMessage]:
    async with platform.sessions.tenant(platform.municipality(slug).id) as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.job == TIMER_JOB))
        return sorted(
            (m for m in rows if m.kwargs["object_id"] == str(hold_id)), key=lambda m: m.kwargs["version"]
        )


async def run_timer(platform: Platform, slug: str, message: OutboxMessage) -> None:
    """Run the timer job as a worker would once the message is due."""
    ctx = JobContext(platform, platform.municipality(slug), "core", job=TIMER_JOB, message_key=message.key)
    await fire_workflow_timer(ctx, **message.kwargs)


# --- start, fire, audit, timers -------------------------------------------------------------------------------


async def test_start_and_fire_audit_each_step_and_schedule_the_timer(platform: Platform) -> None:
    before = utcnow()
    hold = await new_hold(platform)
    after = utcnow()
    assert await stored(platform, A, hold.id) == ("held", 1)
    [timer] = await timers_of(platform, A, hold.id)
    assert before + HOLD_FOR <= timer.not_before <= after + HOLD_FOR
    assert timer.kwargs == {
        "workflow": "holds.hold",
        "object_id": str(hold.id),
        "state": "held",
        "version": 1,
        "transition": "expire",
    }

    staff = person(platform, A, "staff")
    async with platform.sessions.tenant(platform.municipality(A).id) as session:
        confirmed = await fire(session, HOLD, hold.id, "confirm", actor=staff, payload={"desk": "counter-2"})
        assert (confirmed.state, confirmed.state_version) == ("confirmed", 2)
    assert await stored(platform, A, hold.id) == ("confirmed", 2)

    started, confirm = await audit_of(platform, A, hold.id)
    assert (started.action, confirm.action) == ("holds.hold_start", "holds.hold_confirm")
    assert started.payload == {"workflow": "holds.hold", "transition": "start", "to": "held", "version": 1}
    assert confirm.actor == f"account:{staff.account_id}"
    assert confirm.payload == {
        "workflow": "holds.hold",
        "transition": "confirm",
        "from": "held",
        "to": "confirmed",
        "version": 2,
        "data": {"desk": "counter-2"},
    }
    assert len(await timers_of(platform, A, hold.id)) == 1  # confirmed has no timers


async def test_a_transition_rolled_back_or_failing_half_way_leaves_nothing(platform: Platform) -> None:
    hold = await new_hold(platform)

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with platform.sessions.tenant(platform.municipality(A).id) as session:
            await fire(session, HOLD, hold.id, "cancel", actor=person(platform, A, "resident"))
            raise Abandon
    assert await stored(platform, A, hold.id) == ("held", 1)
    assert [e.action for e in await audit_of(platform, A, hold.id)] == ["holds.hold_start"]

    async with platform.sessions.tenant(platform.municipality(A).id) as session:
        with pytest.raises(InvalidInput, match="JSON"):  # fails after the UPDATE, while auditing it
            await fire(session, HOLD, hold.id, "cancel", actor=None, payload={"at": object()})
        # the caller swallows the error and commits its transaction
    assert await stored(platform, A, hold.id) == ("held", 1)
    assert [e.action for e in await audit_of(platform, A, hold.id)] == ["holds.hold_start"]


async def test_the_timer_expires_a_hold_nobody_confirmed(platform: Platform) -> None:
    hold = await new_hold(platform)
    [timer] = await timers_of(platform, A, hold.id)

    await run_timer(platform, A, timer)
    assert await stored(platform, A, hold.id) == ("expired", 2)
    expired = (await audit_of(platform, A, hold.id))[-1]
    assert (expired.action, expired.actor) == ("holds.hold_expire", "job:core.fire_workflow_timer")
    assert expired.payload["from"] == "held" and expired.payload["to"] == "expired"

    await run_timer(platform, A, timer)  # delivered again: nothing more happens
    assert await stored(platform, A, hold.id) == ("expired", 2)
    assert len(await audit_of(platform, A, hold.id)) == 2


@pytest.mark.parametrize("backend", ["sqlite"])  # the relay's own tests cover PostgreSQL
async def test_the_relay_and_a_worker_expire_a_hold_once_its_timer_is_due(platform: Platform) -> None:
    """End to end on the embedded broker: the outbox row, the relay, the core job in a worker thread."""
    hold = await new_hold(platform)
    async with platform.sessions.tenant(platform.municipality(A).id) as session:  # half an hour later...
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.job == TIMER_JOB)
            .values(not_before=utcnow() - timedelta(seconds=1))
        )
    runner = JobRunner(platform)
    relay = Relay(platform, runner, RelayConfig())
    try:
        runner.start_worker(threads=1)
        assert await relay.relay_once() >= 1
        await asyncio.to_thread(runner.broker.join, "default", timeout=WAIT_MS)
    finally:
        await relay.stop()
        await asyncio.to_thread(runner.stop)
    assert await stored(platform, A, hold.id) == ("expired", 2)
    assert (await audit_of(platform, A, hold.id))[-1].actor == "job:core.fire_workflow_timer"


async def test_the_timer_of_a_hold_that_moved_on_does_nothing(platform: Platform) -> None:
    hold = await new_hold(platform)
    [timer] = await timers_of(platform, A, hold.id)
    async with platform.sessions.tenant(platform.municipality(A).id) as session:
        await fire(session, HOLD, hold.id, "confirm", actor=person(platform, A, "staff"))

    await run_timer(platform, A, timer)
    assert await stored(platform, A, hold.id) == ("confirmed", 2)
    assert [e.action for e in await audit_of(platform, A, hold.id)] == [
        "holds.hold_start",
        "holds.hold_confirm",
    ]


async def test_the_timer_does_nothing_where_the_plugin_was_switched_off(platform: Platform) -> None:
    hold = await new_hold(platform)
    [timer] = await timers_of(platform, A, hold.id)
    await service.set_plugin_enabled(platform, A, "holds", False)

    await run_timer(platform, A, timer)
    assert await stored(platform, A, hold.id) == ("held", 1)


async def test_confirming_notifies_the_holder_once_in_their_language(platform: Platform) -> None:
    holder = await make_account(platform, A, frozenset({"resident"}))
    miki = platform.municipality(A).id
    async with platform.sessions.tenant(miki) as session:
        hold = Hold(seats=3, holder_id=holder)
        await start(session, HOLD, hold, actor=None)
    staff = person(platform, A, "staff")
    async with platform.sessions.tenant(miki) as session:
        await fire(session, HOLD, hold.id, "confirm", actor=staff)

    async with platform.sessions.tenant(miki) as session:
        [sent] = (await session.scalars(select(Notification).where(Notification.account_id == holder))).all()
        queued = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "core.notification_queued")
        )
    assert (sent.template, sent.locale) == ("holds.confirmed", "ja")
    assert sent.subject == "仮押さえが確定しました（3席）"
    assert sent.body == f"確定：{hold.id}"
    assert sent.dedupe_key == f"workflow:holds.hold:{hold.id}:2:holds.confirmed"
    assert queued is not None and queued.actor == f"account:{staff.account_id}"


# --- refusals -------------------------------------------------------------------------------------------------


async def test_refusals_change_nothing(platform: Platform) -> None:
    big = await new_hold(platform, seats=5)
    small = await new_hold(platform)
    miki = platform.municipality(A).id
    cases: list[tuple[Any, Principal | None, str, type[Exception], str]] = [
        (big, person(platform, A, "staff"), "confirm", InvalidInput, "more than 4 seats"),
        (small, person(platform, A, "resident"), "confirm", Forbidden, "holds.confirm"),
        (small, person(platform, B, "staff"), "confirm", Forbidden, "holds.confirm"),  # B's staff, at A
        (small, Principal(), "confirm", NotAuthenticated, "holds.confirm"),
        (small, person(platform, A, "admin"), "expire", Forbidden, "platform only"),
        (small, person(platform, A, "staff"), "approve", InvalidInput, "no transition 'approve'"),
    ]
    for hold, actor, transition, error, fragment in cases:
        with pytest.raises(error) as caught:
            async with platform.sessions.tenant(miki) as session:
                await fire(session, HOLD, hold.id, transition, actor=actor)
        assert fragment in caught.value.detail, (transition, caught.value.detail)
    for hold in (big, small):
        assert await stored(platform, A, hold.id) == ("held", 1)
        assert len(await audit_of(platform, A, hold.id)) == 1

    async with platform.sessions.tenant(miki) as session:  # the platform itself may expire it
        await fire(session, HOLD, small.id, "expire", actor=None)
    assert await stored(platform, A, small.id) == ("expired", 2)


async def test_a_transition_from_the_wrong_state_or_version_is_a_conflict_naming_the_state(
    platform: Platform,
) -> None:
    hold = await new_hold(platform)
    staff = person(platform, A, "staff")
    miki = platform.municipality(A).id
    with pytest.raises(TransitionConflict) as stale:
        async with platform.sessions.tenant(miki) as session:
            await fire(session, HOLD, hold.id, "confirm", actor=staff, expected_version=7)
    assert (stale.value.state, stale.value.version, stale.value.allowed) == (
        "held",
        1,
        ["confirm", "cancel", "expire"],
    )

    async with platform.sessions.tenant(miki) as session:
        await fire(session, HOLD, hold.id, "cancel", actor=staff)
    with pytest.raises(TransitionConflict) as late:
        async with platform.sessions.tenant(miki) as session:
            await fire(session, HOLD, hold, "confirm", actor=staff)  # the object as read before the cancel
    assert (late.value.state, late.value.version, late.value.allowed) == ("cancelled", 2, [])
    assert "is cancelled" in late.value.detail


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    towns=st.lists(st.sampled_from(["miki", "takamatsu", "naoshima"]), min_size=2, max_size=2, unique=True),
    transition=st.sampled_from(["confirm", "cancel", "expire"]),
)
async def test_another_municipalitys_object_is_not_found(
    platform: Platform, towns: list[str], transition: str
) -> None:
    owner, intruder = towns
    for slug in towns:
        await service.set_plugin_enabled(platform, slug, "holds", True)
    hold = await new_hold(platform, owner)
    for actor in (person(platform, intruder, "admin"), None):
        with pytest.raises(NotFound):
            async with platform.sessions.tenant(platform.municipality(intruder).id) as session:
                await fire(session, HOLD, hold.id, transition, actor=actor)
    assert await stored(platform, owner, hold.id) == ("held", 1)
    assert len(await audit_of(platform, owner, hold.id)) == 1
    assert await audit_of(platform, intruder, hold.id) == []


# --- the race ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_of_sixteen_concurrent_transitions_exactly_one_wins(platform: Platform) -> None:
    """Sixteen callers who all saw version 1, each in a session (a connection) of its own."""
    hold = await new_hold(platform)
    miki = platform.municipality(A).id
    staff = person(platform, A, "staff")

    async def attempt(transition: str) -> str:
        try:
            async with platform.sessions.tenant(miki) as session:
                await fire(session, HOLD, hold.id, transition, actor=staff, expected_version=1)
        except TransitionConflict as exc:
            return f"conflict:{exc.state}:{','.join(exc.allowed)}"
        return f"won:{transition}"

    transitions = ["confirm", "cancel"] * 8
    outcomes = await asyncio.gather(*(attempt(t) for t in transitions))
    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1, outcomes
    state = {"won:confirm": "confirmed", "won:cancel": "cancelled"}[winners[0]]
    allowed = "cancel" if state == "confirmed" else ""
    assert sorted(outcomes) == sorted([winners[0]] + [f"conflict:{state}:{allowed}"] * 15)
    assert await stored(platform, A, hold.id) == (state, 2)
    assert len(await audit_of(platform, A, hold.id)) == 2


# --- over HTTP ------------------------------------------------------------------------------------------------


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_over_http_a_lost_race_is_a_409_problem_naming_the_state(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    staff = (await make_key(platform, A, frozenset({"holds:confirm", "holds:cancel"}))).headers
    created = await client.post(f"/m/{A}/holds/", json={"seats": 2}, headers=staff)
    assert created.status_code == 201, created.text
    hold = created.json()
    assert (hold["state"], hold["version"]) == ("held", 1)

    first, second = await asyncio.gather(
        client.post(f"/m/{A}/holds/{hold['id']}/confirm", json={"expected_version": 1}, headers=staff),
        client.post(f"/m/{A}/holds/{hold['id']}/cancel", json={"expected_version": 1}, headers=staff),
    )
    won, lost = (first, second) if first.status_code == 200 else (second, first)
    assert won.status_code == 200, won.text
    body = problem(lost, 409)
    state = won.json()["state"]
    assert body["type"] == "urn:tsunagu:problem:transition-conflict"
    assert (body["state"], body["version"]) == (state, 2)
    assert body["allowed"] == (["cancel"] if state == "confirmed" else [])
    assert body["instance"] == lost.request.url.path


async def test_over_http_refusals_are_problems(platform: Platform, client: httpx.AsyncClient) -> None:
    confirmer = (await make_key(platform, A, frozenset({"holds:confirm"}))).headers
    canceller = (await make_key(platform, A, frozenset({"holds:cancel"}))).headers
    other_town = (await make_key(platform, B, frozenset({"holds:confirm"}))).headers
    big = (await client.post(f"/m/{A}/holds/", json={"seats": 9}, headers=confirmer)).json()
    small = (await client.post(f"/m/{A}/holds/", json={"seats": 1}, headers=confirmer)).json()

    guard = problem(await client.post(f"/m/{A}/holds/{big['id']}/confirm", headers=confirmer), 422)
    assert "more than 4 seats" in guard["detail"]
    assert guard["type"] == "urn:tsunagu:problem:guard-refused"
    denied = problem(await client.post(f"/m/{A}/holds/{small['id']}/confirm", headers=canceller), 403)
    assert "holds.confirm" in denied["detail"]
    problem(await client.post(f"/m/{A}/holds/{small['id']}/confirm"), 401)
    problem(await client.post(f"/m/{A}/holds/{small['id']}/confirm", headers=other_town), 403)
    problem(
        await client.post(f"/m/{B}/holds/{small['id']}/confirm", headers=other_town), 404
    )  # not enabled at B

    await service.set_plugin_enabled(platform, B, "holds", True)
    problem(await client.post(f"/m/{B}/holds/{small['id']}/confirm", headers=other_town), 404)
    for hold in (big, small):
        assert await stored(platform, A, uuid.UUID(hold["id"])) == ("held", 1)


# --- the audit log still verifies -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", database_url)
    monkeypatch.setenv("TSUNAGU_SECRET_KEY", TEST_SECRET_KEY)  # the events' MACs are made with the test key
    monkeypatch.delenv("TSUNAGU_BROKER_URL", raising=False)
    yield


def test_audit_verify_passes_after_transitions_and_timers(
    database_url: str, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async def work() -> None:
        platform = await holds_platform(database_url)
        try:
            confirmed, expiring = await new_hold(platform), await new_hold(platform)
            async with platform.sessions.tenant(platform.municipality(A).id) as session:
                await fire(session, HOLD, confirmed.id, "confirm", actor=person(platform, A, "staff"))
            [timer] = await timers_of(platform, A, expiring.id)
            await run_timer(platform, A, timer)
        finally:
            await workflow_plugin.drop_tables(platform)
            await platform.close()

    asyncio.run(work())
    with cli_runner(capsys) as run:
        result = run("audit", "verify", "-m", A, "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["ok"] is True
    assert report["entries"] >= 5  # two starts, a confirm, an expiry, enabling the plugin
