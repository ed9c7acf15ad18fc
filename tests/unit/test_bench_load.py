"""The load generator: HTTP/1.1 framing on the wire, and a fixed number of requests over a fixed number of
connections, counted and checked, against a small server in the test's own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bench.load import LoadSpec, Request, encode, parse_head, read_response, run


def test_a_request_carries_host_headers_and_a_framed_json_body() -> None:
    wire = encode(
        Request(method="POST", path="/notices/", host="miki.localhost", headers={"x-api-key": "k"}, body="{}")
    )
    head, body = wire.split(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /notices/ HTTP/1.1",
        b"host: miki.localhost",
        b"x-api-key: k",
        b"content-type: application/json",
        b"content-length: 2",
    ]
    assert body == b"{}"
    assert b"content-length" not in encode(Request(method="GET", path="/", host="h"))


def test_a_response_head_gives_status_and_framing() -> None:
    head = parse_head(b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\nConnection: close\r\n\r\n")
    assert (head.status, head.content_length, head.chunked, head.close) == (201, 12, False, True)
    assert parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").chunked
    with pytest.raises(ValueError):
        parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")


async def test_a_chunked_body_is_read_whole_and_no_further() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\nNEXT"
    )
    head, body = await read_response(reader)
    assert (head.status, body) == (200, b"abcdef")
    assert await reader.readexactly(4) == b"NEXT"


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """Answers every request 201 on keep-alive connections; records each request line (with its Host)."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next(
                    (int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length")), 0
                )
                await reader.readexactly(length)
                seen.append(lines[0] + b" " + next(h for h in lines if h.startswith(b"host:")))
                writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with listener:
        yield listener.sockets[0].getsockname()[1], seen


async def test_every_request_is_sent_once_spread_over_the_templates(server: tuple[int, list[bytes]]) -> None:
    port, seen = server
    templates = [Request(method="POST", path=f"/{i}", host=f"m{i}.localhost", body="{}") for i in range(3)]
    spec = LoadSpec(
        port=port, templates=templates, count=60, warmup=10, start=4, concurrency=4, expect_status=201
    )
    result = await run(spec)
    assert result.run.requests == 60 and result.run.errors == 0
    assert len(result.run.latencies_ms) == 60
    # Requests 4..73 (warm-up included): request n is templates[n % 3], so template 1 gets one more.
    assert [seen.count(f"POST /{i} HTTP/1.1 host: m{i}.localhost".encode()) for i in range(3)] == [23, 24, 23]


async def test_an_unexpected_status_is_counted_as_an_error(server: tuple[int, list[bytes]]) -> None:
    port, _ = server
    spec = LoadSpec(port=port, templates=[Request(method="GET", path="/", host="h")], count=10, concurrency=2,
                    expect_status=200)  # fmt: skip
    result = await run(spec)
    assert result.run.errors == 10
    assert result.run.first_error.startswith("HTTP 201")
