"""The load generator: a fixed number of HTTP/1.1 requests over a fixed number of keep-alive connections.

Run as its own process (``python -m bench.load < spec.json > run.json``) so that its CPU is not the server's. It
is a small asyncio client rather than httpx: the client must cost far less than the servers it measures, or the
bare reference would be measured at the client's pace. Request ``n`` is ``templates[n % len(templates)]``; the
first ``warmup`` requests are sent and not measured, then ``count`` requests are timed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from bench.stats import LoadRun

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    uvloop = None


class Request(msgspec.Struct, kw_only=True, frozen=True):
    method: str
    path: str
    host: str
    """The ``Host`` header: it picks the municipality on the platform."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: str = ""
    """Sent as UTF-8, with ``content-type: application/json`` when not empty."""


class LoadSpec(msgspec.Struct, kw_only=True, frozen=True):
    port: int
    templates: list[Request]
    count: int
    concurrency: int
    expect_status: int
    warmup: int = 0
    start: int = 0
    """Index of the first request (warm-up included): runs after the first go on where the last one ended."""
    address: str = "127.0.0.1"
    server_pid: int | None = None
    """Read this process's CPU time at the start and end of the measured requests."""
    timeout_s: float = 600.0
    """For the whole run: a server that stops answering fails the run instead of hanging it."""


class LoadResult(msgspec.Struct, kw_only=True, frozen=True):
    run: LoadRun
    server_cpu_seconds: float | None = None


def encode(request: Request) -> bytes:
    """The request as bytes on the wire (keep-alive is HTTP/1.1's default)."""
    body = request.body.encode()
    lines = [f"{request.method} {request.path} HTTP/1.1", f"host: {request.host}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    if body:
        lines.append("content-type: application/json")
    if body or request.method not in ("GET", "HEAD"):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Head(msgspec.Struct, kw_only=True, frozen=True):
    status: int
    content_length: int | None
    chunked: bool
    close: bool


def parse_head(head: bytes) -> Head:
    """Status line and the headers that frame the body.

    :raises ValueError: if it is not an HTTP/1.x response head.
    """
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    length: int | None = None
    chunked = False
    close = version == "HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            close = "close" in value
    return Head(status=int(rest[:3]), content_length=length, chunked=chunked, close=close)


async def read_response(reader: asyncio.StreamReader) -> tuple[Head, bytes]:
    head = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if head.chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        return head, b"".join(parts)
    if head.content_length is not None:
        return head, await reader.readexactly(head.content_length)
    return head, await reader.read()  # no framing: the body runs to the end of the connection


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Connection:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, data: bytes) -> tuple[Head, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.spec.address, self.spec.port)
        assert self.reader is not None
        self.writer.write(data)
        head, body = await read_response(self.reader)
        if head.close:
            self.close()
        return head, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _phase(
    spec: LoadSpec, connections: list[_Connection], wire: list[bytes], indices: Iterator[int], stop: int
) -> tuple[list[float], int, str]:
    latencies: list[float] = []
    failures = {"count": 0, "first": ""}

    async def drive(connection: _Connection) -> None:
        for index in indices:
            if index >= stop:
                return
            started = time.perf_counter()
            try:
                head, body = await connection.exchange(wire[index % len(wire)])
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                connection.close()
                failures["count"] += 1
                failures["first"] = failures["first"] or f"{type(exc).__name__}: {exc}"
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if head.status != spec.expect_status:
                failures["count"] += 1
                failures["first"] = (
                    failures["first"] or f"HTTP {head.status}: {body[:300].decode(errors='replace')}"
                )

    await asyncio.gather(*(drive(c) for c in connections))
    return latencies, failures["count"], failures["first"]


async def run(spec: LoadSpec) -> LoadResult:
    """Warm up, then time ``spec.count`` requests."""
    if not spec.templates:
        raise ValueError("no request templates")
    wire = [encode(t) for t in spec.templates]
    connections = [_Connection(spec) for _ in range(spec.concurrency)]
    try:
        async with asyncio.timeout(spec.timeout_s):
            first = spec.start + spec.warmup
            if spec.warmup:
                await _phase(spec, connections, wire, itertools.count(spec.start), first)
            indices = itertools.count(first)
            server_before = cpu_seconds(spec.server_pid) if spec.server_pid else 0.0
            cpu_before = time.process_time()
            started = time.perf_counter()
            latencies, errors, first_error = await _phase(
                spec, connections, wire, indices, first + spec.count
            )
            seconds = time.perf_counter() - started
            client_cpu = time.process_time() - cpu_before
            server_cpu = cpu_seconds(spec.server_pid) - server_before if spec.server_pid else None
    finally:
        for connection in connections:
            connection.close()
    return LoadResult(
        run=LoadRun(
            requests=spec.count,
            concurrency=spec.concurrency,
            seconds=seconds,
            latencies_ms=latencies,
            errors=errors,
            first_error=first_error,
            client_cpu_seconds=client_cpu,
        ),
        server_cpu_seconds=server_cpu,
    )


def main() -> None:
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=LoadSpec)
    result = uvloop.run(run(spec)) if uvloop is not None else asyncio.run(run(spec))
    sys.stdout.buffer.write(msgspec.json.encode(result))


if __name__ == "__main__":
    main()
