"""``tsunagu serve``, ``tsunagu worker`` and ``tsunagu demo``."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.cli.runtime import open_platform, state
from core.db import migrate
from core.settings import load_settings, redact_url
from core.tenancy import service
from core.tenancy.manifest import load_manifests

if TYPE_CHECKING:
    from core.jobs import JobRunner
    from core.platform import Platform


def _serve(host: str | None, port: int | None, workers: int | None) -> None:
    import uvicorn

    settings = load_settings(host=host, port=port, workers=workers)
    url = f"http://{settings.host}:{settings.port}"
    click.echo(
        f"tsunagu listening on {url} ({settings.workers} process(es); try {url}/municipalities)", err=True
    )
    uvicorn.run(
        "core.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        lifespan="on",
    )


@click.command()
@click.option("--host", help="Interface to listen on (default TSUNAGU_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port (default TSUNAGU_PORT or 8000).")
@click.option("--workers", type=int, help="App processes (default TSUNAGU_WORKERS or 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve HTTP for every municipality (uvicorn). The database must be migrated."""
    _serve(host, port, workers)


@click.command()
@click.option("--threads", type=int, default=4, show_default=True, help="Worker threads in this process.")
def worker(threads: int) -> None:
    """Run jobs from the broker (TSUNAGU_BROKER_URL), relay the outbox and fire periodic jobs, until interrupted."""
    from core.jobs import JobRunner

    settings = state().settings
    if settings.broker_url.startswith("embedded"):
        raise click.UsageError(
            "TSUNAGU_BROKER_URL is embedded://: jobs run inside `tsunagu serve`; "
            "set a redis:// or amqp:// broker to run separate workers"
        )
    if not 1 <= threads <= 256:
        raise click.BadParameter(f"must be between 1 and 256, got {threads}", param_hint="--threads")
    platform = open_platform()
    runner = JobRunner(platform)
    platform.jobs = runner
    asyncio.run(_work(platform, runner, threads))


async def _work(platform: Platform, runner: JobRunner, threads: int) -> None:
    from core.jobs import JobServices

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await platform.start_refresher()
        services = JobServices(platform, runner)
        services.start(consume=True, threads=threads)
        click.echo(f"worker consuming {len(runner.actors)} job type(s) with {threads} thread(s)", err=True)
        try:
            await stop.wait()
        finally:
            await services.stop()
    finally:
        await platform.close()


@click.command()
@click.option("--host", help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 8000).")
def demo(host: str | None, port: int | None) -> None:
    """Migrate the database, load municipalities/*.toml, and serve: the embedded default in one command."""
    settings = state().settings
    platform = open_platform(settings)
    click.echo(f"database: {redact_url(settings.database_url)}", err=True)
    migrate.upgrade(platform, "heads")
    files = sorted(Path(settings.municipalities_dir).glob("*.toml"))
    manifests = load_manifests(files)

    async def apply() -> int:
        try:
            await platform.refresh(force=True)
            changes = await service.apply_manifests(platform, manifests, [str(f) for f in files])
            return len(changes)
        finally:
            await platform.close()

    changed = asyncio.run(apply())
    click.echo(
        f"municipalities: {len(manifests)} loaded from {settings.municipalities_dir} ({changed} change(s))",
        err=True,
    )
    _serve(host, port, None)
