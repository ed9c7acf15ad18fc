"""Profiles of the platform's server while it is measured: where a request's CPU time goes.

``--profile DIR`` runs each ``tsunagu serve`` under :mod:`bench.sampler` (a sampling profiler from the standard
library) and writes ``DIR/<scenario>-<backend>.txt``. Sampling slows the server a little: figures of a profiled
run are for finding costs, not for quoting.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.servers import Server

HEAD = 40
"""Lines of the report quoted in a row's notes."""


def output(folder: Path | None, tag: str) -> Path | None:
    """Where the profile of the server ``tag`` goes, or ``None`` when not profiling."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve() / f"{tag}.txt"


def summarise(profile: Path) -> str:
    """Say where the profile is, with its areas (the head of the report)."""
    if not profile.exists():
        return f"no profile written to {profile} (did the server stop cleanly?)"
    head = profile.read_text(encoding="utf-8").split("\n\n== by function", 1)[0]
    return f"profile: {profile}\n{head}"


@contextmanager
def sampling(*servers: Server | None) -> Iterator[None]:
    """Profile ``servers`` (those run under the sampler) only while the block runs: the measured requests."""
    running = [s for s in servers if s is not None]
    for server in running:
        server.signal(signal.SIGUSR1)
    try:
        yield
    finally:
        for server in running:
            server.signal(signal.SIGUSR2)
