"""Serve the reference app with uvicorn, with the options ``tsunagu serve`` uses (see core/cli/server.py)."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "bench.reference.app:create_app",
        factory=True,
        host=os.environ.get("TSUNAGU_HOST", "127.0.0.1"),
        port=int(os.environ["TSUNAGU_PORT"]),
        workers=1,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
