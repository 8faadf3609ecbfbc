"""A small JSON-over-HTTP client for serving engines: asynchronous (httpx), with a timeout on every
call and retries of idempotent reads only (a generation request is never sent twice). Every
failure a user can cause or fix is a ``ServerError``: one line naming the URL and what to do."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from lattts.errors import UserError

READ_RETRIES = 3  # GETs only: a lost /metrics or /props answer is asked again, a generation never is
READ_TIMEOUT_S = 10.0
GENERATE_TIMEOUT_S = 3600.0  # a long generation on a slow machine; the server, not the client, bounds it


class ServerError(UserError):
    """The server could not be reached, refused a request, or answered something lattts cannot read."""


@dataclass(frozen=True)
class Response:
    status: int
    text: str
    url: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except json.JSONDecodeError:
            raise ServerError(f"{self.url} answered {self.status} with something that is not JSON "
                              f"({self.text[:80]!r}); is this the server you meant?") from None


class Http:
    """GET and POST against one base URL (e.g. http://127.0.0.1:8080)."""

    def __init__(self, base_url: str, read_timeout_s: float = READ_TIMEOUT_S,
                 generate_timeout_s: float = GENERATE_TIMEOUT_S, transport=None):
        self.base_url = base_url.rstrip("/")
        self.read_timeout_s, self.generate_timeout_s = read_timeout_s, generate_timeout_s
        self.transport = transport  # tests pass an httpx transport; None = real sockets

    def _client(self, timeout_s: float):
        import httpx

        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, transport=self.transport)

    async def get(self, path: str) -> Response:
        """GET with retries (idempotent); a 404 is returned to the caller, which may probe another path."""
        import httpx

        last: Exception | None = None
        for attempt in range(READ_RETRIES):
            try:
                async with self._client(self.read_timeout_s) as client:
                    r = await client.get(path)
                return Response(r.status_code, r.text, f"{self.base_url}{path}")
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last = exc
                await asyncio.sleep(0.2 * (attempt + 1))
        raise self._unreachable(path, last)

    async def post(self, path: str, body: dict) -> Response:
        """POST once (a generation is not idempotent: it is never retried)."""
        import httpx

        try:
            async with self._client(self.generate_timeout_s) as client:
                r = await client.post(path, json=body)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise self._unreachable(path, exc) from None
        return Response(r.status_code, r.text, f"{self.base_url}{path}")

    def _unreachable(self, path: str, exc: Exception | None) -> ServerError:
        why = type(exc).__name__ if exc is not None else "no answer"
        detail = str(exc).splitlines()[0] if exc is not None and str(exc) else why
        return ServerError(f"cannot reach {self.base_url}{path} ({detail}); start the server or fix --server URL")


def run(coro):
    """Run one coroutine to completion from synchronous code (the CLI and the workflows are synchronous)."""
    return asyncio.run(coro)
