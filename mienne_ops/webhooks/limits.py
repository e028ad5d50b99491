"""The receiver's bounds: what one request may cost it in memory and in time.

A webhook endpoint is public. Without bounds, eight unsigned 50 MB bodies took 593 MB of memory and
300 idle connections kept past 180 s made a valid delivery fail (issue 13). Three bounds, each where
it can be enforced:

- **Body size and body time** (`BoundedRequests`, ASGI middleware around the whole app): a declared
  ``Content-Length`` over `ReceiverLimits.max_body_bytes` is answered 413 before a byte of the body is
  read; a chunked body is read until it passes the limit, then 413. The whole body must arrive within
  `ReceiverLimits.body_timeout` seconds of the headers, else 408 — a slow-body (slowloris) client
  holds a connection for that long at most. Shopify's own budget is 5 s for the whole delivery, so a
  legitimate sender never comes near. Header values must be printable ASCII (a non-ASCII signature
  crashed the comparison): 400; a header block over `ReceiverLimits.max_header_bytes`: 431.
- **Time to send the headers** (`DeadlineH11Protocol`, uvicorn's h11 protocol): uvicorn's keep-alive
  timer only runs *between* requests, and any byte received cancels it, so a connection that sends
  nothing, or one header byte at a time, was kept forever. Here a connection must complete its
  request line and headers within `ReceiverLimits.header_timeout` of opening (or of its previous
  response), or it is closed. h11 itself bounds the header block (`h11_max_incomplete_event_size`).
- The refusals are answered by the middleware itself, so they never reach a route or the database.

`receiver_config` builds the one uvicorn configuration the CLI, the dev harness and the tests use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio
import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from mienne_ops.webhooks.inputs import BadInput, Refusals

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class ReceiverLimits:
    #: A Shopify order with 250 lines is under 1 MB; 4 MiB leaves room without inviting abuse.
    max_body_bytes: int = 4 * 1024 * 1024
    #: Seconds from the headers to the end of the body (Shopify sends the whole delivery within 5 s).
    body_timeout: float = 10.0
    #: Seconds from a connection's opening (or its previous response) to its complete headers.
    header_timeout: float = 10.0
    #: Seconds an idle keep-alive connection is kept between requests.
    keep_alive_timeout: int = 5
    #: The whole header block: h11 refuses a longer one still arriving (400), the middleware one that
    #: arrived at once (431).
    max_header_bytes: int = 16 * 1024


class BoundedRequests:
    """ASGI middleware: ASCII headers, and the body read whole, within size and time, before the app."""

    def __init__(self, app: ASGIApp, limits: ReceiverLimits, refusals: Refusals) -> None:
        self.app = app
        self.limits = limits
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            _check_headers(scope["headers"], self.limits)
            body = await self._read_body(receive)
        except BadInput as bad:
            answer = self.refusals.answer(_source(scope), bad)
            # The rest of the body is unread: closing stops the client from sending it all anyway.
            answer.headers["Connection"] = "close"
            await answer(scope, receive, send)
            return
        except _Disconnected:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.limits.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.limits.max_body_bytes:
                        raise _too_large(self.limits.max_body_bytes)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError as error:
            raise BadInput(408, "body_timeout", "the body did not arrive in time") from error


class _Disconnected(Exception):
    """The client went away before sending its whole body: nothing to answer."""


def _check_headers(headers: list[tuple[bytes, bytes]], limits: ReceiverLimits) -> None:
    # h11 bounds only a header block still arriving; one that came in a single read is checked here.
    if sum(len(name) + len(value) for name, value in headers) > limits.max_header_bytes:
        raise BadInput(
            431, "headers_too_large", f"the headers are larger than {limits.max_header_bytes} bytes"
        )
    for name, value in headers:
        if not all(32 <= byte < 127 or byte == 9 for byte in value):
            raise BadInput(400, "bad_header", f"header {name.decode('latin-1')} is not printable ASCII")
        if name == b"content-length":
            if not value.strip().isdigit():
                raise BadInput(400, "bad_header", "Content-Length is not a number")
            if int(value) > limits.max_body_bytes:
                raise _too_large(limits.max_body_bytes)


def _too_large(limit: int) -> BadInput:
    return BadInput(413, "body_too_large", f"the body is larger than {limit} bytes")


def _source(scope: Scope) -> str:
    """The sender a refusal is counted under: the last segment of ``/webhooks/<source>``."""
    path = str(scope.get("path", ""))
    return path.rsplit("/", 1)[-1] if path.startswith("/webhooks/") else "other"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the client's later messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a complete request line and headers."""

    header_timeout: float = ReceiverLimits.header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _cancel_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        # IDLE: no complete request yet (nothing sent, or headers still trickling in). A request
        # being read or answered is past IDLE: its body is the middleware's to bound.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def receiver_config(app: ASGIApp, host: str, port: int, limits: ReceiverLimits) -> uvicorn.Config:
    """uvicorn serving the receiver with its header deadline, keep-alive and header-size bounds."""
    protocol = type("ReceiverH11Protocol", (DeadlineH11Protocol,), {"header_timeout": limits.header_timeout})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=limits.keep_alive_timeout,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        log_level="warning",
    )
