"""No read or write bound to one municipality ever touches another's rows.

Random data is spread over several municipalities, through services and through the HTTP API; then, for every
municipality, every way of reading (API routes, ORM services, raw SQL on PostgreSQL) must see exactly its own rows,
and every way of writing must change only its own rows or be refused.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from core.db import utcnow
from core.exceptions import CrossTenantAccess
from core.platform import Platform
from core.tenancy import service
from plugins.notices import services as notice_services
from plugins.notices.models import Notice
from plugins.notices.schemas import NoticeCreate
from tsunagu_opinion_box.models import Opinion

SLUGS = ["miki", "takamatsu", "naoshima", "ayagawa"]

operations = st.lists(
    st.tuples(
        st.sampled_from(SLUGS),
        st.sampled_from(["notice", "opinion"]),
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30
        ).filter(lambda s: s.strip()),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
async def isolated(platform: Platform) -> Platform:
    for slug in SLUGS:
        await service.set_plugin_enabled(platform, slug, "opinion_box", True)
        await service.configure_plugin(platform, slug, "notices", {"page_size": 100})
    return platform


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_no_route_service_or_query_crosses_municipalities(
    isolated: Platform, client: httpx.AsyncClient, ops: list[tuple[str, str, str]]
) -> None:
    platform = isolated
    notices: dict[str, set[uuid.UUID]] = defaultdict(set)
    receipts: dict[str, set[str]] = defaultdict(set)
    for slug in SLUGS:  # what earlier examples left behind belongs to the expectation too
        m = platform.municipality(slug)
        async with platform.sessions.tenant(m.id) as session:
            notices[slug] = set(await session.scalars(select(Notice.id)))
            receipts[slug] = set(await session.scalars(select(Opinion.receipt)))

    for slug, kind, words in ops:
        m = platform.municipality(slug)
        if kind == "notice":
            async with platform.sessions.tenant(m.id) as session:
                out = await notice_services.post_notice(
                    session, platform.plugin_settings(m, "notices"), NoticeCreate(title=words, body=words)
                )
            notices[slug].add(out.id)
        else:
            response = await client.post(f"/m/{slug}/opinion_box/", json={"topic": words, "body": words})
            assert response.status_code == 201, response.text
            receipts[slug].add(response.json()["receipt"])

    for slug in SLUGS:
        m = platform.municipality(slug)
        others = [s for s in SLUGS if s != slug]

        # API: lists and details show only this municipality's rows.
        listed = (await client.get(f"/m/{slug}/notices/")).json()
        assert {uuid.UUID(item["id"]) for item in listed["items"]} == notices[slug]
        for other in others:
            for notice_id in notices[other]:
                assert (await client.get(f"/m/{slug}/notices/{notice_id}")).status_code == 404
            for receipt in receipts[other]:
                assert (await client.get(f"/m/{slug}/opinion_box/{receipt}")).status_code == 404
        for receipt in receipts[slug]:
            assert (await client.get(f"/m/{slug}/opinion_box/{receipt}")).status_code == 200

        # Services and ORM statements: reads filtered, bulk writes confined, foreign writes refused.
        async with platform.sessions.tenant(m.id) as session:
            assert set(await session.scalars(select(Notice.id))) == notices[slug]
            assert set(await session.scalars(select(Opinion.receipt))) == receipts[slug]
            assert await session.scalar(select(func.count()).select_from(Notice)) == len(notices[slug])
        async with platform.sessions.tenant(m.id) as session:
            changed = await session.execute(update(Notice).values(title="overwritten"))
            assert changed.rowcount == len(notices[slug])
            removed = await session.execute(delete(Opinion))
            assert removed.rowcount == len(receipts[slug])
            await session.rollback()
        other = platform.municipality(others[0])
        with pytest.raises(CrossTenantAccess):
            async with platform.sessions.tenant(m.id) as session:
                session.add(
                    Notice(
                        municipality_id=other.id,
                        category="general",
                        title="x",
                        body="x",
                        published_at=utcnow(),
                    )
                )
                await session.flush()
        with pytest.raises(CrossTenantAccess):
            async with platform.sessions.tenant(m.id) as session:
                await session.execute(
                    insert(Notice).values(
                        municipality_id=other.id,
                        id=uuid.uuid4(),
                        category="general",
                        title="x",
                        body="x",
                        published_at=utcnow(),
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
        if notices[slug]:
            with pytest.raises(CrossTenantAccess):
                async with platform.sessions.tenant(m.id) as session:
                    mine = await session.get(Notice, (m.id, next(iter(notices[slug]))))
                    assert mine is not None
                    mine.municipality_id = other.id
                    await session.flush()

        if platform.engine.dialect.name == "postgresql":
            await _raw_sql_is_confined(platform, slug, notices, receipts)

    # Nothing above changed anyone's data.
    for slug in SLUGS:
        listed = (await client.get(f"/m/{slug}/notices/")).json()
        assert {uuid.UUID(item["id"]) for item in listed["items"]} == notices[slug]
        assert all(item["title"] != "overwritten" for item in listed["items"])


async def _raw_sql_is_confined(
    platform: Platform, slug: str, notices: dict[str, set[uuid.UUID]], receipts: dict[str, set[str]]
) -> None:
    """Row-level security: raw SQL on a connection bound to one municipality sees and changes only its rows."""
    m = platform.municipality(slug)
    all_ids = {mm.id for mm in platform.snapshot.by_id.values()}
    async with platform.sessions.tenant(m.id) as session:
        seen = set((await session.execute(text("SELECT DISTINCT municipality_id FROM notices"))).scalars())
        assert seen <= {m.id}
        count = (await session.execute(text("SELECT count(*) FROM opinion_box_opinions"))).scalar()
        assert count == len(receipts[slug])
        hit = await session.execute(
            text("UPDATE notices SET title = 'raw' WHERE municipality_id <> :m"), {"m": m.id}
        )
        assert hit.rowcount == 0
        hit = await session.execute(
            text("DELETE FROM opinion_box_opinions WHERE municipality_id <> :m"), {"m": m.id}
        )
        assert hit.rowcount == 0
        enablements = set(
            (await session.execute(text("SELECT municipality_id FROM plugin_enablements"))).scalars()
        )
        assert enablements == {m.id}
        await session.rollback()
    for other_id in all_ids - {m.id}:
        with pytest.raises(DBAPIError, match="row-level security"):
            async with platform.sessions.tenant(m.id) as session:
                await session.execute(
                    text(
                        "INSERT INTO notices (municipality_id, id, category, title, body, published_at, created_at, "
                        "updated_at) VALUES (:m, :id, 'general', 'x', 'x', now(), now(), now())"
                    ),
                    {"m": other_id, "id": uuid.uuid4()},
                )
        break  # one foreign municipality is enough per bound one; the policy is the same for all


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=False)
async def test_unbound_connection_sees_no_tenant_rows_on_postgres(
    isolated: Platform, client: httpx.AsyncClient
) -> None:
    response = await client.post("/m/miki/opinion_box/", json={"topic": "t", "body": "b"})
    assert response.status_code == 201
    async with isolated.sessions.unbound() as session:
        assert (await session.execute(text("SELECT count(*) FROM opinion_box_opinions"))).scalar() == 0
        assert (await session.execute(text("SELECT count(*) FROM plugin_enablements"))).scalar() == 0
    async with isolated.sessions.platform() as session:
        assert (await session.execute(text("SELECT count(*) FROM opinion_box_opinions"))).scalar() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=False)
async def test_application_role_cannot_bypass_row_level_security(isolated: Platform) -> None:
    async with isolated.engine.connect() as conn:
        role = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert tuple(role) == (False, False)
        rows = (
            await conn.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'municipality_id' "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' WHERE c.relkind = 'r'"
                )
            )
        ).all()
    assert {r.relname for r in rows} >= {"notices", "opinion_box_opinions", "plugin_enablements"}
    assert all(r.relrowsecurity and r.relforcerowsecurity for r in rows), rows


async def test_orm_bulk_inserts_must_name_the_bound_municipality_on_every_row(platform: Platform) -> None:
    miki, other = platform.municipality("miki"), platform.municipality("sanuki")

    def row(municipality_id: int) -> dict[str, object]:
        now = utcnow()
        return {
            "municipality_id": municipality_id,
            "id": uuid.uuid4(),
            "category": "general",
            "title": "x",
            "body": "x",
            "published_at": now,
            "created_at": now,
            "updated_at": now,
        }

    async with platform.sessions.tenant(miki.id) as session:
        await session.execute(insert(Notice), [row(miki.id), row(miki.id)])
    for statement, params in (
        (insert(Notice), [row(miki.id), row(other.id)]),
        (insert(Notice).values([row(miki.id), row(other.id)]), None),
    ):
        with pytest.raises(CrossTenantAccess):
            async with platform.sessions.tenant(miki.id) as session:
                await session.execute(statement, params)
    async with platform.sessions.platform() as session:
        owners = list(await session.scalars(select(Notice.municipality_id)))
    assert owners == [miki.id, miki.id]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=False)
async def test_savepoints_keep_the_row_level_security_context(isolated: Platform) -> None:
    """Only a session's outermost transaction sets the context; savepoints (every workflow step) inherit it, also
    after one of them is rolled back."""
    setting = text("SELECT current_setting('tsunagu.municipality_id'), current_setting('tsunagu.platform')")
    miki = isolated.municipality("miki")
    async with isolated.sessions.tenant(miki.id) as session:
        async with session.begin_nested():
            assert tuple((await session.execute(setting)).one()) == (str(miki.id), "off")
        nested = await session.begin_nested()
        await session.execute(setting)
        await nested.rollback()
        assert tuple((await session.execute(setting)).one()) == (str(miki.id), "off")
        async with session.begin_nested():
            assert (
                await session.execute(
                    text("SELECT count(*) FROM plugin_enablements WHERE municipality_id <> :m"),
                    {"m": miki.id},
                )
            ).scalar() == 0
