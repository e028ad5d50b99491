"""The Zendesk fake: tickets, comments (as ticket updates), tags, users, limits and signed webhooks.

Follows ``shared/docs/api/zendesk.md`` (its "Sandbox fidelity checklist") with the API under
``/zendesk/api/v2/…``:

- Auth: HTTP Basic with username ``{email}/token`` and the API token, or ``Authorization: Bearer``
  with the OAuth token (both act as the sandbox agent); anything else is 401.
- ``GET  /api/v2/tickets/{id}.json`` (``?include=users`` sideloads requester, submitter, assignee)
- ``PUT  /api/v2/tickets/{id}.json`` ``{"ticket": {...}}``: appends ``comment`` (``body`` or
  ``html_body``, ``public`` default TRUE, ``author_id`` default the caller) and applies ``status``,
  ``priority``, ``assignee_id``, ``group_id``, ``custom_fields`` and ``tags`` (the list is REPLACED);
  ``safe_update`` + a stale ``updated_stamp`` is 409; answers 200 ``{"ticket", "audit": {"events"}}``.
  A closed ticket cannot be updated (422); the 5,001st comment is 422.
- ``GET|PUT|POST|DELETE /api/v2/tickets/{id}/tags.json``: list, ADD, set (replace), remove.
- ``GET  /api/v2/tickets/{id}/comments.json``: cursor pagination (``page[size]`` ≤ 100,
  ``page[after]``; ``meta.has_more``/``after_cursor``, ``links.next``) or offset pagination
  (``page``, ``per_page``; ``next_page``, ``count``).
- ``GET  /api/v2/users/{id}.json``.
- ``POST|GET /api/v2/webhooks``, ``GET|DELETE /api/v2/webhooks/{id}``,
  ``GET /api/v2/webhooks/{id}/signing_secret``: the Webhooks API (every sandbox webhook signs with the
  one sandbox secret; an active POST webhook subscribed to ``conditional_ticket_events`` plays one
  connected to our trigger and hears the ticket events).
- Limits, every answer carrying ``X-Rate-Limit`` / ``X-Rate-Limit-Remaining`` (the account's): the
  account limit (700/min), the Update Ticket limit (100/min) and the per-ticket per-user update cap
  (30 per 10 min), each answered 429 + ``Retry-After`` (seconds until the window frees a slot).
- Errors as ``{"error": "<Code>", "description": "<text>"}`` (401, 404, 409, 422, 429).

Control plane, under ``/_sandbox/zendesk``:

- ``POST /tickets`` ``{"requester_email", "requester_name"?, "subject", "body", "tags"?}``: a customer
  writes in -> 201 ``{"ticket", "comment_id"}`` (status new, the first public comment) and the
  ``ticket_created`` webhook fires.
- ``POST /tickets/{id}/customer_reply`` ``{"body"}``: the requester answers (``comment_added`` fires).
- ``POST /tickets/{id}/agent_update`` ``{"body"?, "public"?, "status"?}``: another agent updates the
  ticket meanwhile (moves ``updated_at``: the concurrent writer safe updates guard against).
- ``POST /tickets/{id}/fill`` ``{"count"}``: that many filler internal notes (to reach the cap).
- ``POST /limits`` ``{"account_per_minute", "update_ticket_per_minute", "ticket_user_updates",
  "ticket_user_window_seconds", "comment_cap", "frozen_clock", "advance_seconds"}`` (any subset).
- ``POST /webhooks`` ``{"url"}``: a webhook connected to our trigger (idempotent per URL);
  ``GET /webhooks``: the webhooks and the delivery log.

Webhooks (the trigger's JSON body is OUR design, see `ticket_event_payload`) are signed as Zendesk
signs them: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, timestamp + raw body)) with
``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601, UTC), plus ``X-Zendesk-Webhook-Id`` and
``X-Zendesk-Webhook-Invocation-Id``. A background thread delivers them with the FaultBook's drop and
duplicate faults (a duplicate is a second *invocation*, new invocation id, same body) and retries a
failed attempt (same invocation id, fresh timestamp and signature).

Sandbox choices (not documented by Zendesk): ``updated_at`` has second precision and moves forward
by at least a second on every change (so a safe update always sees a concurrent change); a refused
request does not count against a limit; a failed webhook attempt is retried up to
``WEBHOOK_ATTEMPTS`` times whatever the status; the webhook timestamp is the wall clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.control import BadInput
from mienne_ops.sandbox.webhook_queue import DeliveryQueue

log = logging.getLogger("mienne_ops.sandbox.zendesk")

SYSTEM = "zendesk"
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
COMMENT_CAP = 5000
PAGE_MAX = 100
ACCOUNT_PER_MINUTE = 700
UPDATE_TICKET_PER_MINUTE = 100
TICKET_USER_UPDATES = 30
TICKET_USER_WINDOW_SECONDS = 600.0
WEBHOOK_ATTEMPTS = 4
WEBHOOK_BACKOFF_SECONDS = 0.05  # compressed: Zendesk's real back-off is not documented here
WEBHOOK_TIMEOUT_SECONDS = 10.0  # Zendesk gives an endpoint 10 seconds
ACCOUNT_ID = 7_000_123


class ZendeskError(Exception):
    def __init__(
        self, status: int, error: str, description: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.details = details


def error_body(error: str, description: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "description": description}
    if details:
        body["details"] = details
    return body


def not_found() -> ZendeskError:
    return ZendeskError(404, "RecordNotFound", "Not found")


def invalid(field_name: str, message: str) -> ZendeskError:
    return ZendeskError(
        422, "RecordInvalid", "Record validation errors", {field_name: [{"description": message}]}
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's webhook signature: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def stamp(moment: datetime) -> str:
    """Zendesk's timestamps: ISO 8601, UTC, second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- limits -----------------------------------------------------------------------------------------
class LimitClock:
    """Monotonic seconds, or a frozen instant that moves only when told (deterministic tests)."""

    def __init__(self) -> None:
        self._frozen_at: float | None = None

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def now(self) -> float:
        return time.monotonic() if self._frozen_at is None else self._frozen_at

    def freeze(self) -> None:
        if self._frozen_at is None:
            self._frozen_at = time.monotonic()

    def thaw(self) -> None:
        self._frozen_at = None

    def advance(self, seconds: float) -> None:
        if self._frozen_at is None:
            raise BadInput("the clock is running; freeze it before advancing it")
        self._frozen_at += seconds


class RateWindow:
    """At most ``limit`` requests per key in any sliding window of ``seconds``."""

    def __init__(self, clock: LimitClock, limit: int, seconds: float) -> None:
        self.clock = clock
        self.limit = limit
        self.seconds = seconds
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def _window(self, key: str) -> deque[float]:
        hits = self._hits[key]
        now = self.clock.now()
        while hits and now - hits[0] >= self.seconds:
            hits.popleft()
        return hits

    def retry_after(self, key: str) -> int | None:
        """Seconds until a slot frees (None: a request may go now)."""
        hits = self._window(key)
        if len(hits) < self.limit:
            return None
        # Rounded first: (t + 600) - t in floating point may be 600.0000000001, not worth a 601.
        return max(1, math.ceil(round(hits[0] + self.seconds - self.clock.now(), 6)))

    def hit(self, key: str) -> None:
        self._window(key).append(self.clock.now())

    def remaining(self, key: str) -> int:
        return max(0, self.limit - len(self._window(key)))

    def reset(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._hits.clear()


class Limits:
    """The account limit, the Update Ticket limit and the per-ticket per-user update cap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock = LimitClock()
        self.account = RateWindow(self.clock, ACCOUNT_PER_MINUTE, 60.0)
        self.update_ticket = RateWindow(self.clock, UPDATE_TICKET_PER_MINUTE, 60.0)
        self.ticket_user = RateWindow(self.clock, TICKET_USER_UPDATES, TICKET_USER_WINDOW_SECONDS)

    def configure(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.account.reset(
                _positive_int(body, "account_per_minute", self.account.limit), self.account.seconds
            )
            self.update_ticket.reset(
                _positive_int(body, "update_ticket_per_minute", self.update_ticket.limit),
                self.update_ticket.seconds,
            )
            window = body.get("ticket_user_window_seconds", self.ticket_user.seconds)
            if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
                raise BadInput("ticket_user_window_seconds must be a positive number")
            self.ticket_user.reset(
                _positive_int(body, "ticket_user_updates", self.ticket_user.limit), float(window)
            )
            frozen, advance = body.get("frozen_clock"), body.get("advance_seconds")
            if frozen is not None and not isinstance(frozen, bool):
                raise BadInput("frozen_clock must be true or false")
            if advance is not None and (isinstance(advance, bool) or not isinstance(advance, int | float)):
                raise BadInput("advance_seconds must be a number")
            if frozen:
                self.clock.freeze()
            elif frozen is False:
                self.clock.thaw()
            if advance is not None:
                if advance < 0:
                    raise BadInput("advance_seconds must not be negative")
                self.clock.advance(float(advance))

    def restore_defaults(self) -> None:
        self.clock.thaw()
        self.account.reset(ACCOUNT_PER_MINUTE, 60.0)
        self.update_ticket.reset(UPDATE_TICKET_PER_MINUTE, 60.0)
        self.ticket_user.reset(TICKET_USER_UPDATES, TICKET_USER_WINDOW_SECONDS)

    def admit(self, update_key: str | None) -> tuple[str, int] | None:
        """Count one request; ``update_key`` (ticket:user) for an Update Ticket call.

        Returns the refusing limit's name and its Retry-After, or None (the request was counted).
        """
        with self.lock:
            checks = [("account", self.account, "account")]
            if update_key is not None:
                checks += [
                    ("update_ticket", self.update_ticket, "account"),
                    ("ticket_user", self.ticket_user, update_key),
                ]
            for name, window, key in checks:
                wait = window.retry_after(key)
                if wait is not None:
                    return name, wait
            for _, window, key in checks:
                window.hit(key)
            return None

    def headers(self) -> dict[str, str]:
        with self.lock:
            return {
                "X-Rate-Limit": str(self.account.limit),
                "X-Rate-Limit-Remaining": str(self.account.remaining("account")),
            }

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "account_per_minute": self.account.limit,
                "update_ticket_per_minute": self.update_ticket.limit,
                "ticket_user_updates": self.ticket_user.limit,
                "ticket_user_window_seconds": self.ticket_user.seconds,
                "frozen_clock": self.clock.frozen,
            }


def _positive_int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInput(f"{name} must be a positive integer")
    return value


# -- webhooks ---------------------------------------------------------------------------------------
@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    webhook_id: str = field(compare=False)
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    event: str = field(compare=False)
    invocation_id: str = field(compare=False)
    attempt: int = field(default=0, compare=False)


def ticket_event_payload(
    event: str, ticket: dict[str, Any], requester: dict[str, Any], comment_id: int | None
) -> dict[str, Any]:
    """The JSON our Zendesk trigger sends (OUR design: the trigger's body is ours to write).

    The trigger's template is ``{"ticket_id": "{{ticket.id}}", "event": "ticket_created",
    "requester_email": "{{ticket.requester.email}}", "requester_name": "{{ticket.requester.name}}",
    "subject": "{{ticket.title}}", "tags": "{{ticket.tags}}"}``: placeholders render as text, so ids
    arrive as strings and tags space-separated. ``comment_id`` is set for ``comment_added``.
    """
    payload: dict[str, Any] = {
        "ticket_id": str(ticket["id"]),
        "event": event,
        "requester_email": requester.get("email") or "",
        "requester_name": requester.get("name") or "",
        "subject": ticket.get("subject") or "",
        "tags": " ".join(ticket.get("tags") or []),
    }
    if comment_id is not None:
        payload["comment_id"] = str(comment_id)
    return payload


class Sandbox(SystemSandbox):
    name = SYSTEM

    def __init__(self, world, faults) -> None:
        super().__init__(world, faults)
        self.limits = Limits()
        self.comment_cap = COMMENT_CAP
        self.deliveries: DeliveryQueue[Delivery] = DeliveryQueue(
            "zendesk-webhooks", self._deliver, timeout_seconds=WEBHOOK_TIMEOUT_SECONDS
        )

    # -- SystemSandbox --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        api = self._endpoint
        return [
            Route(
                "/api/v2/tickets/{id:int}.json",
                api(self.show_ticket, put=self.update_ticket),
                methods=["GET", "PUT"],
            ),
            Route(
                "/api/v2/tickets/{id:int}/tags.json",
                api(self.list_tags, self.set_tags, put=self.add_tags, delete=self.remove_tags),
                methods=["GET", "POST", "PUT", "DELETE"],
            ),
            Route("/api/v2/tickets/{id:int}/comments.json", api(self.list_comments), methods=["GET"]),
            Route("/api/v2/users/{id:int}.json", api(self.show_user), methods=["GET"]),
            Route("/api/v2/webhooks", api(self.list_webhooks, self.create_webhook), methods=["GET", "POST"]),
            Route(
                "/api/v2/webhooks/{id}",
                api(self.show_webhook, delete=self.delete_webhook),
                methods=["GET", "DELETE"],
            ),
            Route("/api/v2/webhooks/{id}/signing_secret", api(self.signing_secret), methods=["GET"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/tickets", self._create_ticket_route, methods=["POST"]),
            Route("/tickets/{id:int}/customer_reply", self._customer_reply_route, methods=["POST"]),
            Route("/tickets/{id:int}/agent_update", self._agent_update_route, methods=["POST"]),
            Route("/tickets/{id:int}/fill", self._fill_route, methods=["POST"]),
            Route("/limits", self._limits_route, methods=["POST"]),
            Route("/webhooks", self._webhooks_route, methods=["GET", "POST"]),
        ]

    def reset(self, catalog: Catalog) -> None:
        self.world.clear_system(SYSTEM)
        self.limits.restore_defaults()
        self.comment_cap = COMMENT_CAP
        now = stamp(self.world.now())
        agent: dict[str, Any] = {
            "id": credentials.ZENDESK_AGENT_ID,
            "name": "Mienne Ops",
            "email": credentials.ZENDESK["email"],
            "role": "agent",
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        self.world.put(SYSTEM, "user", credentials.ZENDESK_AGENT_ID, agent)
        self.deliveries.clear()

    def state(self) -> dict[str, Any]:
        tickets = []
        for ticket in self.world.list(SYSTEM, "ticket"):
            view = public_ticket(ticket)
            view["comments"] = self.world.list(SYSTEM, _comments_kind(ticket["id"]))
            tickets.append(view)
        deliveries = self.deliveries.logged()
        return {
            "tickets": tickets,
            "users": self.world.list(SYSTEM, "user"),
            "webhooks": self.world.list(SYSTEM, "webhook"),
            "webhook_deliveries": deliveries,
            "webhooks_pending": self.pending_webhooks(),
            "limits": self.limits.status(),
        }

    def credentials(self) -> dict[str, Any]:
        return {**credentials.ZENDESK, "agent_id": credentials.ZENDESK_AGENT_ID}

    def fault_response(self, status: int) -> Response:
        headers = self.limits.headers()
        if status == 429:
            return JSONResponse(
                error_body("TooManyRequests", "You have exceeded the rate limit"),
                status_code=429,
                headers={**headers, "Retry-After": "1"},
            )
        return JSONResponse(
            error_body("ServiceUnavailable", "Service temporarily unavailable"),
            status_code=status,
            headers=headers,
        )

    def start(self) -> None:
        self.deliveries.start()

    def stop(self) -> None:
        self.deliveries.stop()

    # -- request plumbing -----------------------------------------------------------------------
    def _endpoint(self, get=None, post=None, *, put=None, delete=None):
        handlers: dict[str, Callable[..., tuple[int, Any]] | None] = {
            "GET": get,
            "POST": post,
            "PUT": put,
            "DELETE": delete,
        }

        async def endpoint(request: Request) -> Response:
            response = await self._serve(request, handlers)
            response.headers.update(self.limits.headers())
            return response

        return endpoint

    async def _serve(self, request: Request, handlers) -> Response:
        user_id = self._authenticate(request)
        if user_id is None:
            return JSONResponse(
                error_body("Couldn't authenticate you", "Invalid credentials"), status_code=401
            )
        handler = handlers.get(request.method)
        is_ticket_update = handler is not None and handler == self.update_ticket
        update_key = f"{request.path_params.get('id')}:{user_id}" if is_ticket_update else None
        refused = self.limits.admit(update_key)
        if refused is not None:
            limit, wait = refused
            return JSONResponse(
                error_body("TooManyRequests", f"Rate limit exceeded ({limit})"),
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        if handler is None:
            return JSONResponse(
                error_body("InvalidEndpoint", f"{request.method} is not supported here"), status_code=405
            )
        try:
            payload = await _json_payload(request)
            status, body = await run_in_threadpool(
                self._in_tx, handler, request.path_params.get("id"), request.query_params, payload, user_id
            )
        except ZendeskError as error:
            return JSONResponse(
                error_body(error.error, error.description, error.details), status_code=error.status
            )
        if status == 204:
            return Response(status_code=204)
        return JSONResponse(body, status_code=status)

    def _in_tx(self, handler, *args) -> tuple[int, Any]:
        with self.world.tx():
            return handler(*args)

    def _authenticate(self, request: Request) -> int | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        agent_id = credentials.ZENDESK_AGENT_ID
        if scheme.lower() == "bearer":
            ok = hmac.compare_digest(value.strip().encode(), credentials.ZENDESK["oauth_token"].encode())
            return agent_id if ok else None
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected_user = f"{credentials.ZENDESK['email']}/token"
        # Bytes, not text: a non-ASCII header must be refused (401), not crash the comparison.
        user_ok = hmac.compare_digest(username.encode(), expected_user.encode())
        token_ok = hmac.compare_digest(password.encode(), credentials.ZENDESK["api_token"].encode())
        return agent_id if user_ok and token_ok else None

    # -- records --------------------------------------------------------------------------------
    def _ticket(self, ticket_id: int) -> dict[str, Any]:
        ticket = self.world.get(SYSTEM, "ticket", ticket_id)
        if ticket is None:
            raise not_found()
        return ticket

    def _user(self, user_id: Any) -> dict[str, Any] | None:
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            return None
        return self.world.get(SYSTEM, "user", user_id)

    def _touch(self, ticket: dict[str, Any]) -> str:
        """Move ``updated_at`` forward: now, and at least a second after the previous change."""
        now = self.world.now().replace(microsecond=0)
        previous = parse_stamp(ticket.get("updated_at"))
        if previous is not None and now <= previous:
            now = previous + timedelta(seconds=1)
        ticket["updated_at"] = stamp(now)
        return ticket["updated_at"]

    def _add_comment(
        self, ticket: dict[str, Any], body: str, html_body: str | None, public: bool, author_id: int
    ) -> dict[str, Any]:
        if ticket.get("_comment_count", 0) >= self.comment_cap:
            raise invalid("comment", f"A ticket can hold at most {self.comment_cap} comments")
        comment_id = self.world.next_id("zendesk:event", 40_000_001)
        comment = {
            "id": comment_id,
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "html_body": html_body or f'<div class="zd-comment"><p>{_escape(body)}</p></div>',
            "plain_body": body,
            "public": public,
            "attachments": [],
            "via": {"channel": "api"},
            "created_at": stamp(self.world.now()),
        }
        self.world.put(SYSTEM, _comments_kind(ticket["id"]), comment_id, comment)
        ticket["_comment_count"] = ticket.get("_comment_count", 0) + 1
        return comment

    def _find_or_create_user(self, email: str, name: str | None) -> dict[str, Any]:
        for user in self.world.list(SYSTEM, "user"):
            if (user.get("email") or "").lower() == email.lower():
                return user
        now = stamp(self.world.now())
        user = {
            "id": self.world.next_id("zendesk:user", 910_001),
            "name": name or email.split("@")[0],
            "email": email,
            "role": "end-user",
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        self.world.put(SYSTEM, "user", user["id"], user)
        return user

    # -- API handlers ---------------------------------------------------------------------------
    def show_ticket(self, ticket_id: int, params, body, user_id: int) -> tuple[int, dict[str, Any]]:
        ticket = self._ticket(ticket_id)
        answer: dict[str, Any] = {"ticket": public_ticket(ticket)}
        includes = {part.strip() for part in (params.get("include") or "").split(",")}
        if "users" in includes:
            ids = sorted(
                {ticket[k] for k in ("requester_id", "submitter_id", "assignee_id") if ticket.get(k)}
            )
            answer["users"] = [user for user in map(self._user, ids) if user is not None]
        return 200, answer

    def show_user(self, user_id_param: int, params, body, user_id: int) -> tuple[int, dict[str, Any]]:
        user = self._user(user_id_param)
        if user is None:
            raise not_found()
        return 200, {"user": user}

    def update_ticket(self, ticket_id: int, params, body: Any, user_id: int) -> tuple[int, dict[str, Any]]:
        changes = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(changes, dict):
            raise ZendeskError(400, "InvalidEndpoint", 'The request body must be {"ticket": {...}}')
        ticket = self._ticket(ticket_id)
        if ticket["status"] == "closed":
            raise invalid("status", "Status: closed prevents ticket update")
        if changes.get("safe_update") in (True, "true"):
            sent = parse_stamp(changes.get("updated_stamp"))
            if sent is None:
                raise invalid("updated_stamp", "updated_stamp is required with safe_update")
            if sent != parse_stamp(ticket["updated_at"]):
                raise ZendeskError(
                    409,
                    "UpdateConflict",
                    "Safe Update prevented the update due to outdated ticket data. "
                    "Please fetch the latest ticket data and try again.",
                )
        events: list[dict[str, Any]] = []
        comment = changes.get("comment")
        if comment is not None:
            events.append(self._comment_event(ticket, comment, user_id))
        events += self._apply_fields(ticket, changes)
        if events:
            self._touch(ticket)
            self.world.put(SYSTEM, "ticket", ticket["id"], ticket)
        audit = {
            "id": self.world.next_id("zendesk:audit", 70_000_001),
            "ticket_id": ticket["id"],
            "author_id": user_id,
            "created_at": ticket["updated_at"],
            "via": {"channel": "api"},
            "events": events,
        }
        return 200, {"ticket": public_ticket(ticket), "audit": audit}

    def _comment_event(self, ticket: dict[str, Any], comment: Any, user_id: int) -> dict[str, Any]:
        if not isinstance(comment, dict):
            raise invalid("comment", "comment must be an object")
        text, html = comment.get("body"), comment.get("html_body")
        if html is not None and (not isinstance(html, str) or not html.strip()):
            raise invalid("comment", "html_body must be text")
        if text is None and html is not None:
            text = _strip_html(html)
        if not isinstance(text, str) or not text.strip():
            raise invalid("comment", "Comment: body or html_body is required")
        public = comment.get("public", True)
        if not isinstance(public, bool):
            raise invalid("comment", "public must be true or false")
        author_id = comment.get("author_id", user_id)
        if self._user(author_id) is None:
            raise invalid("comment", f"author_id {author_id!r} is not a user")
        created = self._add_comment(ticket, text, html, public, author_id)
        return {**created, "type": "Comment"}

    def _apply_fields(self, ticket: dict[str, Any], changes: dict[str, Any]) -> list[dict[str, Any]]:
        updates: dict[str, Any] = {}
        if "status" in changes:
            if changes["status"] not in STATUSES:
                raise invalid("status", f"Status: {changes['status']!r} is not valid")
            updates["status"] = changes["status"]
        if "priority" in changes:
            if changes["priority"] not in (*PRIORITIES, None):
                raise invalid("priority", f"Priority: {changes['priority']!r} is not valid")
            updates["priority"] = changes["priority"]
        for name in ("assignee_id", "group_id"):
            if name in changes:
                value = changes[name]
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise invalid(name, f"{name} must be an integer")
                if name == "assignee_id" and value is not None and self._user(value) is None:
                    raise invalid(name, f"Assignee {value} is not a user")
                updates[name] = value
        if "custom_fields" in changes:
            updates["custom_fields"] = _merged_custom_fields(
                ticket.get("custom_fields") or [], changes["custom_fields"]
            )
        if "tags" in changes:
            updates["tags"] = normalise_tags(changes["tags"])  # an update's tags REPLACE the list
        events = []
        for name, value in updates.items():
            previous = ticket.get(name)
            if value != previous:
                ticket[name] = value
                events.append(self._change_event(name, value, previous))
        return events

    def _change_event(self, name: str, value: Any, previous: Any) -> dict[str, Any]:
        return {
            "id": self.world.next_id("zendesk:event", 40_000_001),
            "type": "Change",
            "field_name": name,
            "value": value,
            "previous_value": previous,
        }

    def list_tags(self, ticket_id: int, params, body, user_id: int) -> tuple[int, dict[str, Any]]:
        return 200, {"tags": self._ticket(ticket_id).get("tags") or []}

    def add_tags(self, ticket_id: int, params, body: Any, user_id: int) -> tuple[int, dict[str, Any]]:
        ticket, tags = self._tag_change(ticket_id, body)
        return self._save_tags(ticket, [*ticket["tags"], *(t for t in tags if t not in ticket["tags"])])

    def set_tags(self, ticket_id: int, params, body: Any, user_id: int) -> tuple[int, dict[str, Any]]:
        ticket, tags = self._tag_change(ticket_id, body)
        return self._save_tags(ticket, tags)

    def remove_tags(self, ticket_id: int, params, body: Any, user_id: int) -> tuple[int, dict[str, Any]]:
        ticket, tags = self._tag_change(ticket_id, body)
        return self._save_tags(ticket, [t for t in ticket["tags"] if t not in tags])

    def _tag_change(self, ticket_id: int, body: Any) -> tuple[dict[str, Any], list[str]]:
        if not isinstance(body, dict) or "tags" not in body:
            raise ZendeskError(400, "InvalidEndpoint", 'The request body must be {"tags": [...]}')
        ticket = self._ticket(ticket_id)
        if ticket["status"] == "closed":
            raise invalid("status", "Status: closed prevents ticket update")
        return ticket, normalise_tags(body["tags"])

    def _save_tags(self, ticket: dict[str, Any], tags: list[str]) -> tuple[int, dict[str, Any]]:
        if tags != ticket["tags"]:
            ticket["tags"] = tags
            self._touch(ticket)
            self.world.put(SYSTEM, "ticket", ticket["id"], ticket)
        return 200, {"tags": tags}

    def list_comments(self, ticket_id: int, params, body, user_id: int) -> tuple[int, dict[str, Any]]:
        self._ticket(ticket_id)
        comments = sorted(self.world.list(SYSTEM, _comments_kind(ticket_id)), key=lambda c: c["id"])
        if params.get("sort_order") == "desc":
            comments.reverse()
        if "page[size]" in params:
            return 200, _cursor_page(comments, params)
        return 200, _offset_page(comments, params)

    # -- control-plane actions ------------------------------------------------------------------
    def create_ticket(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """A customer writes in: a new ticket with the first public comment; the webhook fires."""
        email = _require_text(body, "requester_email")
        if "@" not in email:
            raise BadInput("requester_email must be an email address")
        subject, text = _require_text(body, "subject"), _require_text(body, "body")
        name = body.get("requester_name")
        if name is not None and not isinstance(name, str):
            raise BadInput("requester_name must be text")
        try:
            tags = normalise_tags(body.get("tags") or [])
        except ZendeskError as error:
            raise BadInput("tags must be a list of strings") from error
        with self.world.tx():
            requester = self._find_or_create_user(email, name)
            now = stamp(self.world.now())
            ticket_id = self.world.next_id("zendesk:ticket", 1001)
            ticket: dict[str, Any] = {
                "id": ticket_id,
                "url": f"https://{credentials.ZENDESK['subdomain']}.zendesk.com/api/v2/tickets/{ticket_id}.json",
                "subject": subject,
                "raw_subject": subject,
                "description": text,
                "status": "new",
                "priority": None,
                "type": None,
                "requester_id": requester["id"],
                "submitter_id": requester["id"],
                "assignee_id": None,
                "group_id": None,
                "tags": tags,
                "custom_fields": [],
                "via": {"channel": "email"},
                "created_at": now,
                "updated_at": now,
                "_comment_count": 0,
            }
            comment = self._add_comment(ticket, text, None, True, requester["id"])
            self.world.put(SYSTEM, "ticket", ticket_id, ticket)
        self.emit(ticket_event_payload("ticket_created", ticket, requester, None))
        return public_ticket(ticket), comment["id"]

    def customer_reply(self, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        text = _require_text(body, "body")
        with self.world.tx():
            ticket = self.world.get(SYSTEM, "ticket", ticket_id)
            if ticket is None:
                raise BadInput(f"no ticket {ticket_id}")
            requester = self._user(ticket["requester_id"]) or {}
            comment = self._add_comment(ticket, text, None, True, ticket["requester_id"])
            if ticket["status"] in ("pending", "solved"):
                ticket["status"] = "open"  # a requester's reply reopens the ticket
            self._touch(ticket)
            self.world.put(SYSTEM, "ticket", ticket_id, ticket)
        self.emit(ticket_event_payload("comment_added", ticket, requester, comment["id"]))
        return comment

    def agent_update(self, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        with self.world.tx():
            ticket = self.world.get(SYSTEM, "ticket", ticket_id)
            if ticket is None:
                raise BadInput(f"no ticket {ticket_id}")
            if body.get("body") is not None:
                public = body.get("public", False)
                if not isinstance(public, bool):
                    raise BadInput("public must be true or false")
                self._add_comment(
                    ticket, _require_text(body, "body"), None, public, credentials.ZENDESK_AGENT_ID
                )
            if body.get("status") is not None:
                if body["status"] not in STATUSES:
                    raise BadInput(f"status must be one of {', '.join(STATUSES)}")
                ticket["status"] = body["status"]
            self._touch(ticket)
            self.world.put(SYSTEM, "ticket", ticket_id, ticket)
        return public_ticket(ticket)

    def fill(self, ticket_id: int, count: Any) -> int:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BadInput("count must be a non-negative integer")
        with self.world.tx():
            ticket = self.world.get(SYSTEM, "ticket", ticket_id)
            if ticket is None:
                raise BadInput(f"no ticket {ticket_id}")
            if ticket.get("_comment_count", 0) + count > self.comment_cap:
                raise BadInput(f"a ticket holds at most {self.comment_cap} comments")
            for index in range(count):
                self._add_comment(
                    ticket, f"filler note {index + 1}", None, False, credentials.ZENDESK_AGENT_ID
                )
            self._touch(ticket)
            self.world.put(SYSTEM, "ticket", ticket_id, ticket)
            return ticket["_comment_count"]

    # -- webhooks -------------------------------------------------------------------------------
    def register_webhook(self, url: str) -> dict[str, Any]:
        """The control route's shortcut: a webhook connected to our trigger (one per URL)."""
        with self.world.tx():
            for webhook in self.world.list(SYSTEM, "webhook"):
                if webhook["endpoint"] == url:
                    return webhook
            return self._new_webhook(
                {
                    "name": "mienne-ops ticket events",
                    "status": "active",
                    "endpoint": url,
                    "http_method": "POST",
                    "request_format": "json",
                    "subscriptions": ["conditional_ticket_events"],
                }
            )

    def _new_webhook(self, fields: dict[str, Any]) -> dict[str, Any]:
        webhook = {
            "id": "01" + uuid.uuid4().hex[:24].upper(),
            **fields,
            "created_at": stamp(self.world.now()),
            "created_by": str(credentials.ZENDESK_AGENT_ID),
        }
        self.world.put(SYSTEM, "webhook", webhook["id"], webhook)
        return webhook

    # The Webhooks API (create / list / show / delete / signing secret). Every sandbox webhook signs
    # with the one sandbox secret (Zendesk makes one per webhook), so the receiver can check them all.
    def create_webhook(self, path_id, params, body: Any, user_id: int) -> tuple[int, dict[str, Any]]:
        fields = body.get("webhook") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            raise ZendeskError(400, "InvalidInput", 'The request body must be {"webhook": {...}}')
        checks = {
            "name": lambda v: isinstance(v, str) and v.strip(),
            "endpoint": lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
            "http_method": lambda v: v in ("GET", "POST", "PUT", "PATCH", "DELETE"),
            "request_format": lambda v: v in ("json", "xml", "form_encoded"),
            "status": lambda v: v in ("active", "inactive"),
            "subscriptions": lambda v: isinstance(v, list) and v and all(isinstance(x, str) for x in v),
        }
        for name, ok in checks.items():
            if not ok(fields.get(name)):
                raise ZendeskError(400, "InvalidInput", f"webhook.{name} is missing or invalid")
        subscriptions = fields["subscriptions"]
        if "conditional_ticket_events" in subscriptions and len(subscriptions) > 1:
            raise ZendeskError(
                400, "InvalidInput", "a webhook connected to triggers cannot subscribe to Zendesk events"
            )
        webhook = self._new_webhook({name: fields[name] for name in checks})
        return 201, {"webhook": webhook}

    def list_webhooks(self, path_id, params, body, user_id: int) -> tuple[int, dict[str, Any]]:
        webhooks = self.world.list(SYSTEM, "webhook")
        return 200, {"webhooks": webhooks, "meta": {"has_more": False}, "links": {"next": None, "prev": None}}

    def show_webhook(self, webhook_id: str, params, body, user_id: int) -> tuple[int, dict[str, Any]]:
        return 200, {"webhook": self._webhook(webhook_id)}

    def delete_webhook(self, webhook_id: str, params, body, user_id: int) -> tuple[int, None]:
        self._webhook(webhook_id)
        self.world.delete(SYSTEM, "webhook", webhook_id)
        return 204, None

    def signing_secret(self, webhook_id: str, params, body, user_id: int) -> tuple[int, dict[str, Any]]:
        self._webhook(webhook_id)
        return 200, {
            "signing_secret": {"algorithm": "SHA256", "secret": credentials.ZENDESK["webhook_secret"]}
        }

    def _webhook(self, webhook_id: str) -> dict[str, Any]:
        webhook = self.world.get(SYSTEM, "webhook", webhook_id)
        if webhook is None:
            raise not_found()
        return webhook

    def emit(self, payload: dict[str, Any]) -> None:
        """Invoke every active webhook with ``payload`` (faults drawn at invocation time)."""
        faults = self.faults.get(SYSTEM)
        body = json.dumps(payload).encode()
        for webhook in self.world.list(SYSTEM, "webhook"):
            # Only an active webhook connected to our trigger (POST, JSON) hears ticket events.
            connected = "conditional_ticket_events" in webhook["subscriptions"]
            if webhook["status"] != "active" or not connected or webhook["http_method"] != "POST":
                continue
            if self.faults.chance(faults.webhook_drop_rate):
                self.deliveries.record(
                    {"event": payload["event"], "webhook_id": webhook["id"], "outcome": "dropped"}
                )
                continue
            invocations = 2 if self.faults.chance(faults.webhook_duplicate_rate) else 1
            for _ in range(invocations):
                due = time.monotonic() + faults.webhook_delay_ms / 1000
                self.deliveries.push(
                    Delivery(
                        due,
                        self.deliveries.next_seq(),
                        webhook["id"],
                        webhook["endpoint"],
                        body,
                        payload["event"],
                        str(self.world.next_id("zendesk:invocation", 8_350_205_001)),
                    )
                )

    def pending_webhooks(self) -> int:
        return self.deliveries.pending()

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        timestamp = stamp(datetime.now(UTC))
        headers = {
            "Content-Type": "application/json",
            "X-Zendesk-Account-Id": str(ACCOUNT_ID),
            "X-Zendesk-Webhook-Id": delivery.webhook_id,
            "X-Zendesk-Webhook-Invocation-Id": delivery.invocation_id,
            "X-Zendesk-Webhook-Signature": sign(
                credentials.ZENDESK["webhook_secret"], timestamp, delivery.body
            ),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        }
        status: int | None = None
        reason: str | None = None
        try:
            status = client.post(delivery.url, content=delivery.body, headers=headers).status_code
        except httpx.HTTPError as error:
            reason = type(error).__name__
        ok = status is not None and 200 <= status < 300
        self.deliveries.record(
            {
                "event": delivery.event,
                "webhook_id": delivery.webhook_id,
                "invocation_id": delivery.invocation_id,
                "url": delivery.url,
                "status": status,
                "error": reason,
                "attempt": delivery.attempt + 1,
                "outcome": "delivered" if ok else "failed",
            }
        )
        if not ok and delivery.attempt + 1 < WEBHOOK_ATTEMPTS:
            delivery.attempt += 1
            self.deliveries.retry_later(delivery, WEBHOOK_BACKOFF_SECONDS * 2**delivery.attempt)

    # -- control routes -------------------------------------------------------------------------
    async def _create_ticket_route(self, request: Request) -> JSONResponse:
        body = await _control_body(request)
        ticket, comment_id = await run_in_threadpool(self.create_ticket, body)
        return JSONResponse({"ticket": ticket, "comment_id": comment_id}, status_code=201)

    async def _customer_reply_route(self, request: Request) -> JSONResponse:
        body = await _control_body(request)
        comment = await run_in_threadpool(self.customer_reply, request.path_params["id"], body)
        return JSONResponse({"comment": comment}, status_code=201)

    async def _agent_update_route(self, request: Request) -> JSONResponse:
        body = await _control_body(request)
        ticket = await run_in_threadpool(self.agent_update, request.path_params["id"], body)
        return JSONResponse({"ticket": ticket})

    async def _fill_route(self, request: Request) -> JSONResponse:
        body = await _control_body(request)
        count = await run_in_threadpool(self.fill, request.path_params["id"], body.get("count"))
        return JSONResponse({"comment_count": count})

    async def _limits_route(self, request: Request) -> JSONResponse:
        body = await _control_body(request)
        if "comment_cap" in body:
            self.comment_cap = _positive_int(body, "comment_cap", COMMENT_CAP)
        self.limits.configure(body)
        return JSONResponse({**self.limits.status(), "comment_cap": self.comment_cap})

    async def _webhooks_route(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            deliveries = self.deliveries.entries()
            return JSONResponse(
                {
                    "webhooks": self.world.list(SYSTEM, "webhook"),
                    "deliveries": deliveries,
                    "pending": self.pending_webhooks(),
                }
            )
        body = await _control_body(request)
        url = _require_text(body, "url")
        if not url.startswith(("http://", "https://")):
            raise BadInput("url must be an http(s) URL")
        return JSONResponse({"webhook": self.register_webhook(url)}, status_code=201)


# -- helpers ----------------------------------------------------------------------------------------
def public_ticket(ticket: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in ticket.items() if not key.startswith("_")}


def normalise_tags(tags: Any) -> list[str]:
    """Zendesk tags: lower case, a space separates two tags, no duplicates (order kept)."""
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise invalid("tags", "tags must be a list of strings")
    result: list[str] = []
    for tag in tags:
        for part in tag.lower().split():
            if part not in result:
                result.append(part)
    return result


def _merged_custom_fields(current: list[dict[str, Any]], changes: Any) -> list[dict[str, Any]]:
    if not isinstance(changes, list) or not all(
        isinstance(f, dict) and isinstance(f.get("id"), int) for f in changes
    ):
        raise invalid("custom_fields", "custom_fields must be a list of {id, value}")
    merged = {f["id"]: dict(f) for f in current}
    for change in changes:
        merged[change["id"]] = {"id": change["id"], "value": change.get("value")}
    return list(merged.values())


def _comments_kind(ticket_id: int) -> str:
    return f"comments:{ticket_id}"


def _page_size(params, name: str) -> int:
    try:
        size = int(params.get(name, PAGE_MAX))
    except ValueError as error:
        raise ZendeskError(400, "InvalidPaginationParameter", f"{name} must be an integer") from error
    if not 1 <= size <= PAGE_MAX:
        raise ZendeskError(400, "InvalidPaginationParameter", f"{name} must be between 1 and {PAGE_MAX}")
    return size


def _cursor_page(comments: list[dict[str, Any]], params) -> dict[str, Any]:
    size = _page_size(params, "page[size]")
    start = 0
    after = params.get("page[after]")
    if after:
        position = _decode_cursor(after)
        start = next((i + 1 for i, c in enumerate(comments) if c["id"] == position), len(comments))
    page = comments[start : start + size]
    has_more = start + size < len(comments)
    after_cursor = _encode_cursor(page[-1]["id"]) if page else None
    before_cursor = _encode_cursor(page[0]["id"]) if page else None
    return {
        "comments": page,
        "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor},
        "links": {
            "next": f"?page[size]={size}&page[after]={after_cursor}" if has_more else None,
            "prev": f"?page[size]={size}&page[before]={before_cursor}" if start else None,
        },
    }


def _offset_page(comments: list[dict[str, Any]], params) -> dict[str, Any]:
    size = _page_size(params, "per_page")
    try:
        page = int(params.get("page", 1))
    except ValueError as error:
        raise ZendeskError(400, "InvalidPaginationParameter", "page must be an integer") from error
    if page < 1:
        raise ZendeskError(400, "InvalidPaginationParameter", "page must be at least 1")
    start = (page - 1) * size
    return {
        "comments": comments[start : start + size],
        "next_page": f"?page={page + 1}&per_page={size}" if start + size < len(comments) else None,
        "previous_page": f"?page={page - 1}&per_page={size}" if page > 1 else None,
        "count": len(comments),
    }


def _encode_cursor(comment_id: int) -> str:
    return base64.urlsafe_b64encode(f"c{comment_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(raw.removeprefix("c"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ZendeskError(400, "InvalidPaginationParameter", "page[after] is not a valid cursor") from error


def _strip_html(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _require_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{name} is required (text)")
    return value


async def _json_payload(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise ZendeskError(400, "InvalidJSON", "The body is not valid JSON") from error


async def _control_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    body = json.loads(raw) if raw else {}
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body
