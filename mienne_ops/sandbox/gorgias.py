"""The Gorgias fake: the helpdesk REST API, HTTP integrations that call out, and a control plane.

Follows ``shared/docs/api/gorgias.md`` (its "Sandbox fidelity checklist"). API under
``/gorgias/api/…`` (Gorgias' own ``https://<domain>.gorgias.com/api/…`` paths):

- HTTP Basic auth (user email + REST API key) or a Bearer OAuth token; anything else 401.
- Leaky bucket per credential: 40 requests / 20 s for an API key, 80 for OAuth (Enterprise mode: the
  same counts over 10 s); ``X-Gorgias-Account-Api-Call-Limit: used/limit`` on every authenticated
  answer; over the limit 429 with ``Retry-after`` (seconds).
- Cursor lists ``{"data", "object": "list", "uri", "meta": {"prev_cursor", "next_cursor"}}``,
  ``limit`` 30 by default, at most 100 (more: 400), ``order_by`` ``<field>:asc|desc``; no offset
  paging (``offset``/``page``: 400).
- ``GET/POST /tickets``, ``GET/PUT /tickets/{id}`` (full field set; tags as ``{id, name,
  decoration}``; ``PUT`` with ``tags`` replaces the set, unknown names are created),
  ``GET/POST/PUT/DELETE /tickets/{id}/tags`` (``{"ids": [...]}``), ``GET/POST /tags``.
- ``GET/POST /tickets/{id}/messages`` (+ ``/{mid}``): internal note (no receiver, ``public``
  false), outgoing (``receiver`` and ``source`` required, sent from the account's support address),
  incoming (``from_agent`` false). 201 with the message; an outgoing message without
  ``sent_datetime`` is sent by a background sender shortly after (``sent_datetime``), or fails
  (``failed_datetime``, ``last_sending_error``, event ``ticket-message-failed``) when told to.
- ``GET /events`` (``types``, ``object_type``, ``object_id`` filters) for polling consumers.
- ``GET/POST /integrations``, ``GET/PUT /integrations/{id}``: HTTP integrations. On each trigger
  (``ticket-created``, ``ticket-updated``, ``ticket-message-created``, ``ticket-message-failed``)
  the fake renders ``{{ticket.…}}`` variables in ``url`` and ``form`` (other variables render
  empty), sends the configured headers and no signature, retries failed calls, applies the
  FaultBook's ``webhook_drop_rate`` / ``webhook_duplicate_rate``, and after 100 consecutive failed
  calls (retries included; a success resets the count) sets ``deactivated_datetime`` and stops.
- Errors: ``{"error": {"msg": "…"}}`` (a sandbox choice: Gorgias does not document its error body).

Sandbox choices (not documented by Gorgias, each a knob where it matters): an internal note counts as
sent at creation; an incoming message reopens a closed ticket; creating a ticket fires
``ticket-created`` only (``creation_fires_message_created`` also fires ``ticket-message-created``);
every message, ours included, fires ``ticket-message-created``; a failed call is retried 3 times;
``POST /tickets/{id}/tags`` accepts ``ids`` only; write answers are 201 (create) / 200 / 204.

Control plane, under ``/_sandbox/gorgias``:

- ``POST /tickets``                 a customer writes in: ``{"customer_email", "customer_name"?,
  "subject", "body_text", "tags"?, "channel"?: "email"}`` -> 201 the ticket (fires the integrations)
- ``POST /tickets/{id}/messages``   the customer writes again: ``{"body_text"}`` -> 201 the message
- ``POST /sending``                 ``{"fail": true, "error": "…", "delay_seconds": 0.2}``
- ``POST /limits``                  ``{"enterprise": bool, "frozen_clock": bool, "advance_seconds": S}``
- ``POST /delivery``                ``{"attempts": 3, "backoff_seconds": 0.05, "timeout_seconds": 5,
  "creation_fires_message_created": false}``
- ``POST /lost_responses``          ``{"count": 1, "status": 502}``: the next writes are applied,
  then answered with that status (a response lost after the fact)
- ``GET  /integrations``            integrations with ``consecutive_failures`` and delivery counts
- ``GET  /deliveries``              the delivery log (bodies included)
"""

from __future__ import annotations

import base64
import heapq
import hmac
import itertools
import json
import logging
import math
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog

log = logging.getLogger("mienne_ops.sandbox.gorgias")

SYSTEM = "gorgias"
CALL_LIMIT_HEADER = "X-Gorgias-Account-Api-Call-Limit"
API_KEY_LIMIT = 40
OAUTH_LIMIT = 80
WINDOW_SECONDS = 20.0
ENTERPRISE_WINDOW_SECONDS = 10.0
DEFAULT_LIMIT = 30
MAX_LIMIT = 100
FAILURES_BEFORE_DEACTIVATION = 100
CHANNELS = frozenset(
    [
        "aircall",
        "api",
        "chat",
        "email",
        "facebook",
        "facebook-mention",
        "facebook-messenger",
        "facebook-recommendations",
        "help-center",
        "instagram-ad-comment",
        "instagram-comment",
        "instagram-mention",
        "instagram-direct-message",
        "internal-note",
        "phone",
        "sms",
        "twitter",
        "twitter-direct-message",
        "whatsapp",
        "yotpo-review",
    ]
)
VIAS = frozenset(
    [
        "aircall",
        "api",
        "chat",
        "contact_form",
        "email",
        "facebook",
        "form",
        "gorgias_chat",
        "helpdesk",
        "instagram",
        "internal-note",
        "offline_capture",
        "phone",
        "rule",
        "self_service",
        "shopify",
        "sms",
        "twitter",
        "whatsapp",
    ]
)
TRIGGERS = (
    "ticket-created",
    "ticket-updated",
    "ticket-message-created",
    "ticket-self-unsnoozed",
    "ticket-message-failed",
)
TICKET_STATUSES = ("open", "closed")
PRIORITIES = ("low", "normal", "high", "critical")
# The fields `PUT /tickets/{id}` accepts (gorgias.md §2); anything else is refused.
TICKET_UPDATE_FIELDS = frozenset(
    [
        "status",
        "tags",
        "assignee_user",
        "assignee_team",
        "priority",
        "subject",
        "spam",
        "is_unread",
        "snooze_datetime",
        "closed_datetime",
        "customer",
        "external_id",
        "language",
        "meta",
    ]
)
INTEGRATION_HTTP_FIELDS = frozenset(
    [
        "url",
        "method",
        "headers",
        "form",
        "request_content_type",
        "response_content_type",
        "triggers",
        "execution_order",
    ]
)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
TEMPLATE = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


class GorgiasError(Exception):
    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


def error_response(status: int, msg: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"msg": msg}}, status_code=status, headers=headers)


def _now_text(world) -> str:
    return world.now().isoformat(timespec="microseconds")


# -- rate limit ---------------------------------------------------------------------------------
class LeakyBucket:
    """Per-credential leaky bucket: ``capacity`` requests drain over ``window`` seconds.

    The clock is the monotonic clock unless frozen through the control route (tests then move it
    with ``advance``), so "the 41st request within 20 s is refused" holds on a slow CI box.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._levels: dict[str, tuple[float, float]] = {}
        self._frozen_at: float | None = None
        self.window = WINDOW_SECONDS

    def configure(self, *, enterprise: bool = False) -> None:
        with self._lock:
            self.window = ENTERPRISE_WINDOW_SECONDS if enterprise else WINDOW_SECONDS
            self._levels.clear()
            self._frozen_at = None

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def freeze(self) -> None:
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = self._clock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen_at is None:
                raise ValueError("the clock is running; freeze it before advancing it")
            self._frozen_at += seconds

    def take(self, key: str, capacity: int) -> tuple[bool, int, float]:
        """(allowed, calls now in the bucket, seconds until one more call fits)."""
        with self._lock:
            now = self._clock() if self._frozen_at is None else self._frozen_at
            level, at = self._levels.get(key, (0.0, now))
            rate = capacity / self.window
            level = max(0.0, level - (now - at) * rate)
            if level + 1 > capacity:
                self._levels[key] = (level, now)
                return False, math.ceil(level), (level + 1 - capacity) / rate
            level += 1
            self._levels[key] = (level, now)
            return True, math.ceil(level), 0.0


# -- cursor pagination --------------------------------------------------------------------------
def _encode_cursor(order_by: str, direction: str, key: tuple[Any, int]) -> str:
    raw = json.dumps({"o": order_by, "d": direction, "k": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, order_by: str) -> tuple[str, tuple[Any, int]]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        direction, key = decoded["d"], (decoded["k"][0], int(decoded["k"][1]))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise GorgiasError(400, "Invalid cursor.") from error
    if decoded.get("o") != order_by or direction not in ("next", "prev"):
        raise GorgiasError(400, "The cursor does not belong to this order_by.")
    return direction, key


def paginate(
    items: list[dict[str, Any]],
    params,
    *,
    uri: str,
    default_order: str = "created_datetime:desc",
    fields: tuple[str, ...] = ("created_datetime", "updated_datetime", "id"),
) -> dict[str, Any]:
    """One page of a cursor list, in Gorgias' envelope."""
    if "offset" in params or "page" in params:
        raise GorgiasError(400, "Offset pagination is not supported; use the cursor parameter.")
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise GorgiasError(400, f"limit must be an integer between 1 and {MAX_LIMIT}.")
    limit = int(raw_limit)
    order_by = params.get("order_by") or default_order
    name, _, direction = order_by.partition(":")
    direction = direction or "asc"
    if name not in fields or direction not in ("asc", "desc"):
        raise GorgiasError(400, f"order_by must be one of {', '.join(fields)} with :asc or :desc.")
    descending = direction == "desc"

    def key(item: dict[str, Any]) -> tuple[Any, int]:
        return (item["id"] if name == "id" else item.get(name) or "", item["id"])

    def after(a: tuple[Any, int], b: tuple[Any, int]) -> bool:
        return a < b if descending else a > b

    ordered = sorted(items, key=key, reverse=descending)
    cursor = params.get("cursor")
    if cursor:
        move, mark = _decode_cursor(cursor, order_by)
        if move == "next":
            page = [item for item in ordered if after(key(item), mark)][:limit]
        else:
            page = [item for item in ordered if after(mark, key(item))][-limit:]
    else:
        page = ordered[:limit]
    more_after = bool(page) and after(key(ordered[-1]), key(page[-1]))
    more_before = bool(page) and after(key(page[0]), key(ordered[0]))
    return {
        "data": page,
        "object": "list",
        "uri": uri,
        "meta": {
            "prev_cursor": _encode_cursor(order_by, "prev", key(page[0])) if more_before else None,
            "next_cursor": _encode_cursor(order_by, "next", key(page[-1])) if more_after else None,
        },
    }


# -- templates ----------------------------------------------------------------------------------
def render_template(text: str, context: dict[str, Any], *, quote: bool = False) -> str:
    """``{{ticket.a.b}}`` -> the value at that path of the context (empty when absent)."""

    def value(match: re.Match[str]) -> str:
        found: Any = context
        for part in match.group(1).split("."):
            if isinstance(found, dict):
                found = found.get(part)
            elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
                found = found[int(part)]
            else:
                found = None
        if found is None:
            rendered = ""
        elif isinstance(found, dict | list):
            rendered = json.dumps(found)
        elif isinstance(found, bool):
            rendered = "true" if found else "false"
        else:
            rendered = str(found)
        return urllib.parse.quote(rendered, safe="") if quote else rendered

    return TEMPLATE.sub(value, text)


def render_form(form: Any, context: dict[str, Any]) -> Any:
    if isinstance(form, str):
        return render_template(form, context)
    if isinstance(form, dict):
        return {key: render_form(item, context) for key, item in form.items()}
    if isinstance(form, list):
        return [render_form(item, context) for item in form]
    return form


# -- delivery -----------------------------------------------------------------------------------
@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    integration_id: int = field(compare=False)
    trigger: str = field(compare=False)
    event_id: str = field(compare=False)
    method: str = field(compare=False)
    url: str = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    body: bytes | None = field(compare=False)
    attempt: int = field(default=0, compare=False)


@dataclass
class DeliverySettings:
    attempts: int = 3
    backoff_seconds: float = 0.05
    timeout_seconds: float = 5.0
    creation_fires_message_created: bool = False


@dataclass
class SendingSettings:
    fail: bool = False
    error: str = "Recipient address rejected"
    delay_seconds: float = 0.2


class Sandbox(SystemSandbox):
    name = SYSTEM

    def __init__(self, world, faults) -> None:
        super().__init__(world, faults)
        self.bucket = LeakyBucket()
        self.delivery = DeliverySettings()
        self.sending = SendingSettings()
        self._lost = {"count": 0, "status": 502}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._deliveries: list[Delivery] = []
        self._outbox: list[tuple[float, int]] = []  # (due, message id) for the sender
        self._seq = itertools.count()
        self._failures: dict[int, int] = {}
        self.delivery_log: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- SystemSandbox --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        api = self._endpoint
        return [
            Route("/api/tickets", api(self.list_tickets, self.create_ticket), methods=["GET", "POST"]),
            Route(
                "/api/tickets/{id:int}", api(self.get_ticket, put=self.update_ticket), methods=["GET", "PUT"]
            ),
            Route(
                "/api/tickets/{id:int}/tags",
                api(
                    self.ticket_tags,
                    self.add_ticket_tags,
                    put=self.set_ticket_tags,
                    delete=self.remove_ticket_tags,
                ),
                methods=["GET", "POST", "PUT", "DELETE"],
            ),
            Route(
                "/api/tickets/{id:int}/messages",
                api(self.list_messages, self.create_message),
                methods=["GET", "POST"],
            ),
            Route("/api/tickets/{id:int}/messages/{mid:int}", api(self.get_message), methods=["GET"]),
            Route("/api/tags", api(self.list_tags, self.create_tag), methods=["GET", "POST"]),
            Route("/api/customers", api(self.list_customers), methods=["GET"]),
            Route("/api/customers/{id:int}", api(self.get_customer), methods=["GET"]),
            Route("/api/events", api(self.list_events), methods=["GET"]),
            Route(
                "/api/integrations",
                api(self.list_integrations, self.create_integration),
                methods=["GET", "POST"],
            ),
            Route(
                "/api/integrations/{id:int}",
                api(self.get_integration, put=self.update_integration),
                methods=["GET", "PUT"],
            ),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/tickets", self._control(self.customer_writes_in), methods=["POST"]),
            Route("/tickets/{id:int}/messages", self._control(self.customer_writes_again), methods=["POST"]),
            Route("/sending", self._control(self.configure_sending), methods=["POST"]),
            Route("/limits", self._control(self.configure_limits), methods=["POST"]),
            Route("/delivery", self._control(self.configure_delivery), methods=["POST"]),
            Route("/lost_responses", self._control(self.configure_lost_responses), methods=["POST"]),
            Route("/integrations", self._control(self.integration_health), methods=["GET"]),
            Route("/deliveries", self._control(self.deliveries), methods=["GET"]),
        ]

    def reset(self, catalog: Catalog) -> None:
        self.world.clear_system(SYSTEM)
        self.bucket.configure()
        self.delivery = DeliverySettings()
        self.sending = SendingSettings()
        self._lost = {"count": 0, "status": 502}
        with self._cond:
            self._deliveries.clear()
            self._outbox.clear()
            self._failures.clear()
            self.delivery_log.clear()
        user_id = credentials.GORGIAS["sender_user_id"]
        user = {
            "id": user_id,
            "email": credentials.GORGIAS["email"],
            "name": "Mienne Ops",
            "firstname": "Mienne",
            "lastname": "Ops",
            "meta": {},
        }
        self.world.put(SYSTEM, "user", user_id, user)

    def state(self) -> dict[str, Any]:
        tickets = [self._ticket_view(t, with_messages=False) for t in self._all("ticket")]
        return {
            "tickets": tickets,
            "messages": self._all("message"),
            "customers": self._all("customer"),
            "tags": self._all("tag"),
            "integrations": self.integration_health({}, {})[1]["data"],
            "events": len(self._all("event")),
        }

    def credentials(self) -> dict[str, Any]:
        return dict(credentials.GORGIAS)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return error_response(429, "Too many requests.", {"Retry-after": "1"})
        return error_response(status, "Internal server error.")

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for target, name in (
            (self._deliver_loop, "gorgias-http-integrations"),
            (self._send_loop, "gorgias-sender"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    # -- request plumbing -----------------------------------------------------------------------
    def _endpoint(self, get=None, post=None, *, put=None, delete=None):
        handlers = {"GET": get, "POST": post, "PUT": put, "DELETE": delete}

        async def endpoint(request: Request) -> Response:
            return await self._serve(request, handlers)

        return endpoint

    async def _serve(self, request: Request, handlers) -> Response:
        who = self._authenticate(request)
        if who is None:
            return error_response(401, "Authentication failed: check the user email and API key.")
        key, capacity = who
        allowed, used, wait = self.bucket.take(key, capacity)
        limit_header = {CALL_LIMIT_HEADER: f"{used}/{capacity}"}
        if not allowed:
            headers = {**limit_header, "Retry-after": str(max(1, math.ceil(wait)))}
            return error_response(429, "Too many requests: the API call limit was reached.", headers)
        handler = handlers.get(request.method)
        try:
            if handler is None:
                raise GorgiasError(405, f"Method {request.method} not allowed.")
            payload = await _json_payload(request)
            status, body = await run_in_threadpool(
                self._run, handler, dict(request.path_params), request.query_params, payload
            )
        except GorgiasError as error:
            return error_response(error.status, error.msg, limit_header)
        if request.method != "GET" and self._take_lost_response():
            return error_response(self._lost["status"], "Internal server error.", limit_header)
        if status == 204:
            return Response(status_code=204, headers=limit_header)
        return JSONResponse(body, status_code=status, headers=limit_header)

    def _run(self, handler, path, params, payload) -> tuple[int, Any]:
        with self.world.tx():
            return handler(path, params, payload)

    def _take_lost_response(self) -> bool:
        with self._lock:
            if self._lost["count"] <= 0:
                return False
            self._lost["count"] -= 1
            return True

    def _authenticate(self, request: Request) -> tuple[str, int] | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                email, _, api_key = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            ok = hmac.compare_digest(
                email.encode(), credentials.GORGIAS["email"].encode()
            ) & hmac.compare_digest(api_key.encode(), credentials.GORGIAS["api_key"].encode())
            return (f"key:{email}", API_KEY_LIMIT) if ok else None
        if scheme.lower() == "bearer":
            token = value.strip().encode()
            if hmac.compare_digest(token, credentials.GORGIAS["oauth_access_token"].encode()):
                return "oauth", OAUTH_LIMIT
        return None

    # -- storage --------------------------------------------------------------------------------
    def _all(self, kind: str) -> list[dict[str, Any]]:
        return sorted(self.world.list(SYSTEM, kind), key=lambda doc: doc["id"])

    def _load(self, kind: str, record_id: int, label: str) -> dict[str, Any]:
        record = self.world.get(SYSTEM, kind, record_id)
        if record is None:
            raise GorgiasError(404, f"{label} {record_id} not found.")
        return record

    def _save(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        self.world.put(SYSTEM, kind, record["id"], record)
        return record

    def _new_id(self, kind: str, start: int) -> int:
        return self.world.next_id(f"{SYSTEM}:{kind}", start)

    # -- views ----------------------------------------------------------------------------------
    def _person(self, record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None:
            return None
        keys = ("id", "email", "name", "firstname", "lastname", "meta")
        return {k: record.get(k) for k in keys}

    def _ticket_messages(self, ticket_id: int) -> list[dict[str, Any]]:
        return [m for m in self._all("message") if m["ticket_id"] == ticket_id]

    def _tag_view(self, tag: dict[str, Any]) -> dict[str, Any]:
        return {"id": tag["id"], "name": tag["name"], "decoration": tag.get("decoration")}

    def _ticket_view(self, ticket: dict[str, Any], *, with_messages: bool = True) -> dict[str, Any]:
        messages = self._ticket_messages(ticket["id"])
        tags = [self.world.get(SYSTEM, "tag", tag_id) for tag_id in ticket["tag_ids"]]
        customer = (
            self.world.get(SYSTEM, "customer", ticket["customer_id"]) if ticket["customer_id"] else None
        )
        assignee = (
            self.world.get(SYSTEM, "user", ticket["assignee_user_id"]) if ticket["assignee_user_id"] else None
        )
        view = {key: value for key, value in ticket.items() if key not in ("tag_ids", "customer_id")}
        view.update(
            uri=f"/api/tickets/{ticket['id']}/",
            customer=customer,
            assignee_user=self._person(assignee),
            tags=[self._tag_view(tag) for tag in tags if tag is not None],
            first_message=messages[0] if messages else None,
            last_message=messages[-1] if messages else None,
            reply_options={
                "email": {"answerable": customer is not None},
                "internal-note": {"answerable": True},
            },
        )
        if with_messages:
            view["messages"] = messages
        return view

    # -- tickets --------------------------------------------------------------------------------
    def list_tickets(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        tickets = self._all("ticket")
        if params.get("customer_id"):
            tickets = [t for t in tickets if str(t["customer_id"]) == params["customer_id"]]
        if params.get("ticket_ids"):
            wanted = {part for value in params.getlist("ticket_ids") for part in value.split(",")}
            tickets = [t for t in tickets if str(t["id"]) in wanted]
        page = paginate(tickets, params, uri="/api/tickets")
        page["data"] = [self._ticket_view(t, with_messages=False) for t in page["data"]]
        return 200, page

    def get_ticket(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        return 200, self._ticket_view(self._load("ticket", path["id"], "Ticket"))

    def create_ticket(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise GorgiasError(400, "A ticket must be created with at least one message.")
        customer = self._ticket_customer(data, messages)
        now = _now_text(self.world)
        ticket: dict[str, Any] = {
            "id": self._new_id("ticket", 86538200),
            "external_id": data.get("external_id"),
            "language": data.get("language"),
            "status": _choice(data.get("status", "open"), TICKET_STATUSES, "status"),
            "priority": _choice(data.get("priority", "normal"), PRIORITIES, "priority"),
            "channel": _choice(data.get("channel") or messages[0].get("channel"), CHANNELS, "channel"),
            "via": _choice(data.get("via", "api"), VIAS, "via"),
            "from_agent": bool(messages[0].get("from_agent")),
            "subject": data.get("subject"),
            "customer_id": customer["id"] if customer else None,
            "assignee_user_id": None,
            "assignee_team": None,
            "assignee_team_id": None,
            "tag_ids": [],
            "is_unread": True,
            "spam": False,
            "created_datetime": now,
            "opened_datetime": None,
            "last_received_message_datetime": None,
            "last_message_datetime": None,
            "updated_datetime": now,
            "closed_datetime": now if data.get("status") == "closed" else None,
            "snooze_datetime": None,
            "trashed_datetime": None,
            "satisfaction_survey": None,
            "meta": data.get("meta") or {},
        }
        if "tags" in data:
            ticket["tag_ids"] = self._tag_ids_for(data["tags"])
        self._save("ticket", ticket)
        for message in messages:
            self._add_message(ticket, message)
        self._record_event("ticket-created", "Ticket", ticket["id"])
        view = self._ticket_view(ticket)
        self._fire("ticket-created", view)
        if self.delivery.creation_fires_message_created:
            self._fire("ticket-message-created", view)
        return 201, view

    def _ticket_customer(self, data: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
        given = data.get("customer")
        if given is None:
            incoming = next((m for m in messages if m.get("from_agent") is False), None)
            given = incoming.get("sender") if incoming else None
        if given is None:
            return None
        return self._customer_ref(given, create=True)

    def _customer_ref(self, ref: Any, *, create: bool) -> dict[str, Any]:
        """A customer named by ``{"id"}`` or ``{"email"}`` (created by email when allowed)."""
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("email")):
            raise GorgiasError(400, "A customer is given as an object with an id or an email.")
        if ref.get("id"):
            return self._load("customer", _int(ref["id"], "customer.id"), "Customer")
        email = str(ref["email"]).strip().lower()
        found = next((c for c in self._all("customer") if c["email"] == email), None)
        if found is not None or not create:
            if found is None:
                raise GorgiasError(400, f"No customer with the email {email}.")
            return found
        return self._create_customer(email, ref.get("name"))

    def _create_customer(self, email: str, name: str | None) -> dict[str, Any]:
        if "@" not in email:
            raise GorgiasError(400, "The customer email is not valid.")
        now = _now_text(self.world)
        first, _, last = (name or "").partition(" ")
        customer: dict[str, Any] = {
            "id": self._new_id("customer", 5000),
            "external_id": None,
            "email": email,
            "name": name or email,
            "firstname": first,
            "lastname": last,
            "language": None,
            "timezone": None,
            "note": None,
            "channels": [{"type": "email", "address": email, "preferred": True}],
            "data": {},
            "meta": {},
            "created_datetime": now,
            "updated_datetime": now,
        }
        self._record_event("customer-created", "Customer", customer["id"])
        return self._save("customer", customer)

    def update_ticket(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        changes = _require_object(body)
        unknown = sorted(set(changes) - TICKET_UPDATE_FIELDS)
        if unknown:
            raise GorgiasError(400, f"Unknown ticket fields: {', '.join(unknown)}.")
        ticket = self._load("ticket", path["id"], "Ticket")
        now = _now_text(self.world)
        if "status" in changes:
            ticket["status"] = _choice(changes["status"], TICKET_STATUSES, "status")
            ticket["closed_datetime"] = now if ticket["status"] == "closed" else None
        if "tags" in changes:
            ticket["tag_ids"] = self._tag_ids_for(changes["tags"])  # replaces the whole set
        if "priority" in changes:
            ticket["priority"] = _choice(changes["priority"], PRIORITIES, "priority")
        if "assignee_user" in changes:
            ref = changes["assignee_user"]
            user_id = _int(ref.get("id"), "assignee_user.id") if isinstance(ref, dict) else None
            ticket["assignee_user_id"] = user_id and self._load("user", user_id, "User")["id"]
        if "customer" in changes:
            ticket["customer_id"] = self._customer_ref(changes["customer"], create=False)["id"]
        for name in ("subject", "spam", "is_unread", "snooze_datetime", "external_id", "language", "meta"):
            if name in changes:
                ticket[name] = changes[name]
        if "closed_datetime" in changes:
            ticket["closed_datetime"] = changes["closed_datetime"]
        if "assignee_team" in changes:
            ticket["assignee_team"] = changes["assignee_team"]
            ticket["assignee_team_id"] = (changes["assignee_team"] or {}).get("id")
        ticket["updated_datetime"] = now
        self._save("ticket", ticket)
        self._record_event("ticket-updated", "Ticket", ticket["id"])
        view = self._ticket_view(ticket)
        self._fire("ticket-updated", view)
        return 200, view

    # -- tags -----------------------------------------------------------------------------------
    def _tag_ids_for(self, tags: Any) -> list[int]:
        """``[{"name"} | {"id"}]`` -> tag ids, creating unknown names (as a ticket PUT does)."""
        if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
            raise GorgiasError(400, "tags must be a list of objects with a name or an id.")
        ids: list[int] = []
        for tag in tags:
            if tag.get("id") is not None:
                tag_id = self._load("tag", _int(tag["id"], "tags[].id"), "Tag")["id"]
            elif isinstance(tag.get("name"), str) and tag["name"].strip():
                tag_id = self._tag_named(tag["name"], create=True)["id"]
            else:
                raise GorgiasError(400, "Each tag needs a name or an id.")
            if tag_id not in ids:
                ids.append(tag_id)
        return ids

    def _tag_named(self, name: str, *, create: bool) -> dict[str, Any]:
        wanted = name.strip()
        found = next((t for t in self._all("tag") if t["name"].lower() == wanted.lower()), None)
        if found is not None:
            return found
        if not create:
            raise GorgiasError(404, f"Tag {wanted} not found.")
        tag = {
            "id": self._new_id("tag", 100),
            "name": wanted,
            "decoration": None,
            "uri": None,
            "usage": 0,
            "created_datetime": _now_text(self.world),
        }
        tag["uri"] = f"/api/tags/{tag['id']}/"
        return self._save("tag", tag)

    def list_tags(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        tags = self._all("tag")
        return 200, paginate(tags, params, uri="/api/tags", default_order="created_datetime:asc")

    def create_tag(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise GorgiasError(400, "A tag needs a name.")
        if any(t["name"].lower() == name.strip().lower() for t in self._all("tag")):
            raise GorgiasError(400, f"A tag named {name.strip()} already exists.")
        return 201, self._tag_named(name, create=True)

    def _ticket_tag_ids(self, body: Any) -> list[int]:
        data = _require_object(body)
        if "ids" not in data:
            raise GorgiasError(400, 'The body must carry the tag ids: {"ids": [...]}.')
        ids = data["ids"]
        if not isinstance(ids, list):
            raise GorgiasError(400, "ids must be a list of tag ids.")
        return [self._load("tag", _int(tag_id, "ids[]"), "Tag")["id"] for tag_id in ids]

    def ticket_tags(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        ticket = self._load("ticket", path["id"], "Ticket")
        tags = [self._tag_view(self._load("tag", tag_id, "Tag")) for tag_id in ticket["tag_ids"]]
        uri = f"/api/tickets/{ticket['id']}/tags"
        return 200, {
            "data": tags,
            "object": "list",
            "uri": uri,
            "meta": {"prev_cursor": None, "next_cursor": None},
        }

    def _change_tags(self, path, ids: list[int], how: str) -> tuple[int, None]:
        ticket = self._load("ticket", path["id"], "Ticket")
        if how == "add":
            ticket["tag_ids"] += [tag_id for tag_id in ids if tag_id not in ticket["tag_ids"]]
        elif how == "set":
            ticket["tag_ids"] = list(dict.fromkeys(ids))
        else:
            ticket["tag_ids"] = [tag_id for tag_id in ticket["tag_ids"] if tag_id not in ids]
        ticket["updated_datetime"] = _now_text(self.world)
        self._save("ticket", ticket)
        self._record_event("ticket-updated", "Ticket", ticket["id"])
        self._fire("ticket-updated", self._ticket_view(ticket))
        return 204, None

    def add_ticket_tags(self, path, params, body: Any) -> tuple[int, None]:
        return self._change_tags(path, self._ticket_tag_ids(body), "add")

    def set_ticket_tags(self, path, params, body: Any) -> tuple[int, None]:
        return self._change_tags(path, self._ticket_tag_ids(body), "set")

    def remove_ticket_tags(self, path, params, body: Any) -> tuple[int, None]:
        return self._change_tags(path, self._ticket_tag_ids(body), "remove")

    # -- messages -------------------------------------------------------------------------------
    def list_messages(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        ticket = self._load("ticket", path["id"], "Ticket")
        uri = f"/api/tickets/{ticket['id']}/messages"
        return 200, paginate(
            self._ticket_messages(ticket["id"]), params, uri=uri, default_order="created_datetime:asc"
        )

    def get_message(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        message = self._load("message", path["mid"], "Message")
        if message["ticket_id"] != path["id"]:
            raise GorgiasError(404, f"Message {path['mid']} not found.")
        return 200, message

    def create_message(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        ticket = self._load("ticket", path["id"], "Ticket")
        message = self._add_message(ticket, _require_object(body))
        self._record_event("ticket-message-created", "TicketMessage", message["id"])
        self._fire("ticket-message-created", self._ticket_view(ticket))
        return 201, message

    def _add_message(self, ticket: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Validate one of the three message shapes, store it and update its ticket."""
        channel = _choice(data.get("channel"), CHANNELS, "channel")
        via = _choice(data.get("via", "api"), VIAS, "via")
        from_agent = data.get("from_agent")
        if not isinstance(from_agent, bool):
            raise GorgiasError(400, "from_agent must be true or false.")
        if not any(isinstance(data.get(k), str) and data[k].strip() for k in ("body_text", "body_html")):
            raise GorgiasError(400, "A message needs body_text or body_html.")
        now = _now_text(self.world)
        sent = data.get("sent_datetime")
        receiver = None
        if channel == "internal-note":
            if not from_agent:
                raise GorgiasError(400, "An internal note is written by an agent (from_agent: true).")
            sender = self._user_ref(data.get("sender"))
            public, sent = False, sent or now  # never sent to anyone: done at creation
        elif from_agent:
            sender = self._user_ref(data.get("sender"))
            receiver = self._customer_ref(data.get("receiver"), create=False)
            self._check_source(data.get("source"), channel)
            public = True
        else:
            sender = self._customer_ref(data.get("sender"), create=True)
            public, sent = True, sent or now  # received, nothing to send
        message: dict[str, Any] = {
            "id": self._new_id("message", 208822100),
            "uri": None,
            "ticket_id": ticket["id"],
            "channel": channel,
            "via": via,
            "source": data.get("source")
            or {"type": channel, "from": {"address": sender.get("email")}, "to": []},
            "sender": self._person(sender),
            "receiver": self._person(receiver),
            "integration_id": None,
            "rule_id": None,
            "external_id": data.get("external_id"),
            "message_id": f"<{uuid.uuid4().hex}@sandbox.gorgias.mail>",
            "subject": data.get("subject"),
            "body_text": data.get("body_text"),
            "body_html": data.get("body_html"),
            "stripped_text": data.get("body_text"),
            "stripped_html": data.get("body_html"),
            "stripped_signature": None,
            "public": public,
            "from_agent": from_agent,
            "attachments": data.get("attachments") or [],
            "actions": [],
            "headers": {},
            "meta": data.get("meta") or {},
            "intents": [],
            "sentiments": [],
            "created_datetime": now,
            "sent_datetime": sent,
            "failed_datetime": None,
            "opened_datetime": None,
            "last_sending_error": None,
            "is_retriable": False,
        }
        message["uri"] = f"/api/tickets/{ticket['id']}/messages/{message['id']}/"
        self._save("message", message)
        ticket["last_message_datetime"] = now
        ticket["updated_datetime"] = now
        if not from_agent:
            ticket["last_received_message_datetime"] = now
            ticket["is_unread"] = True
            if ticket["status"] == "closed":  # a customer's new message reopens the ticket
                ticket["status"], ticket["closed_datetime"] = "open", None
        self._save("ticket", ticket)
        if sent is None:
            self._queue_send(message["id"])
        return message

    def _user_ref(self, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, dict) or ref.get("id") is None:
            raise GorgiasError(400, 'An agent message needs sender: {"id": <user id>}.')
        user = self.world.get(SYSTEM, "user", _int(ref["id"], "sender.id"))
        if user is None:
            raise GorgiasError(400, f"sender {ref['id']} is not a user of this account.")
        return user

    def _check_source(self, source: Any, channel: str) -> None:
        if not isinstance(source, dict) or not source.get("type"):
            raise GorgiasError(400, "An outgoing message needs a source with a type.")
        sender = source.get("from")
        receivers = source.get("to")
        if not isinstance(sender, dict) or not sender.get("address"):
            raise GorgiasError(400, "An outgoing message needs source.from.address.")
        if (
            not isinstance(receivers, list)
            or not receivers
            or not all(isinstance(r, dict) and r.get("address") for r in receivers)
        ):
            raise GorgiasError(400, 'An outgoing message needs source.to: [{"address"}].')
        if channel == "email" and sender["address"].lower() != credentials.GORGIAS["support_address"]:
            raise GorgiasError(400, f"No email integration sends from {sender['address']}.")

    def _queue_send(self, message_id: int) -> None:
        with self._cond:
            heapq.heappush(self._outbox, (time.monotonic() + self.sending.delay_seconds, message_id))
            self._cond.notify_all()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                due = self._outbox[0][0] - time.monotonic() if self._outbox else None
                if due is None or due > 0:
                    self._cond.wait(timeout=0.2 if due is None else min(due, 0.2))
                    continue
                _, message_id = heapq.heappop(self._outbox)
            try:
                self._send(message_id)
            except Exception:  # the sender thread must survive a reset racing a send
                log.exception("gorgias sandbox: sending message %s failed", message_id)

    def _send(self, message_id: int) -> None:
        with self.world.tx():
            message = self.world.get(SYSTEM, "message", message_id)
            if message is None or message["sent_datetime"] or message["failed_datetime"]:
                return
            now = _now_text(self.world)
            if self.sending.fail:
                message.update(
                    failed_datetime=now,
                    last_sending_error={"message": self.sending.error},
                    is_retriable=False,
                )
            else:
                message["sent_datetime"] = now
            self._save("message", message)
            if self.sending.fail:
                self._record_event("ticket-message-failed", "TicketMessage", message_id)
                ticket = self.world.get(SYSTEM, "ticket", message["ticket_id"])
                if ticket is not None:
                    self._fire("ticket-message-failed", self._ticket_view(ticket))

    # -- customers and events -------------------------------------------------------------------
    def list_customers(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        customers = self._all("customer")
        if params.get("email"):
            customers = [c for c in customers if c["email"] == params["email"].strip().lower()]
        return 200, paginate(customers, params, uri="/api/customers")

    def get_customer(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        return 200, self._load("customer", path["id"], "Customer")

    def _record_event(self, event_type: str, object_type: str, object_id: int) -> None:
        event = {
            "id": self._new_id("event", 1),
            "type": event_type,
            "object_type": object_type,
            "object_id": object_id,
            "user_id": None,
            "context": None,
            "data": None,
            "created_datetime": _now_text(self.world),
        }
        event["uri"] = f"/api/events/{event['id']}/"
        self._save("event", event)

    def list_events(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        events = self._all("event")
        types = {part for value in params.getlist("types") for part in value.split(",") if part}
        if types:
            events = [e for e in events if e["type"] in types]
        if params.get("object_type"):
            events = [e for e in events if e["object_type"] == params["object_type"]]
        if params.get("object_id"):
            events = [e for e in events if str(e["object_id"]) == params["object_id"]]
        return 200, paginate(events, params, uri="/api/events", fields=("created_datetime", "id"))

    # -- HTTP integrations ----------------------------------------------------------------------
    def list_integrations(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        integrations = self._all("integration")
        if params.get("type"):
            integrations = [i for i in integrations if i["type"] == params["type"]]
        return 200, paginate(
            integrations, params, uri="/api/integrations", default_order="created_datetime:asc"
        )

    def get_integration(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        return 200, self._load("integration", path["id"], "Integration")

    def create_integration(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        if data.get("type") != "http":
            raise GorgiasError(400, "Only integrations of type http can be created here.")
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            raise GorgiasError(400, "An integration needs a name.")
        now = _now_text(self.world)
        integration = {
            "id": self._new_id("integration", 9000),
            "name": data["name"].strip(),
            "description": data.get("description"),
            "type": "http",
            "http": _valid_http(data.get("http"), None),
            "created_datetime": now,
            "updated_datetime": now,
            "deactivated_datetime": None,
            "deleted_datetime": None,
            "locked_datetime": None,
            "user": {"id": credentials.GORGIAS["sender_user_id"]},
            "meta": {},
        }
        integration["uri"] = f"/api/integrations/{integration['id']}/"
        return 201, self._save("integration", integration)

    def update_integration(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        integration = self._load("integration", path["id"], "Integration")
        if "name" in data:
            if not isinstance(data["name"], str) or not data["name"].strip():
                raise GorgiasError(400, "An integration needs a name.")
            integration["name"] = data["name"].strip()
        if "description" in data:
            integration["description"] = data["description"]
        if "http" in data:
            integration["http"] = _valid_http(data["http"], integration["http"])
        if "deactivated_datetime" in data:
            # null re-activates (as re-enabling it in the UI does): a fresh count of failures.
            integration["deactivated_datetime"] = data["deactivated_datetime"]
            with self._lock:
                self._failures[integration["id"]] = 0
        integration["updated_datetime"] = _now_text(self.world)
        return 200, self._save("integration", integration)

    def _fire(self, trigger: str, ticket_view: dict[str, Any]) -> None:
        """Queue a call of every active HTTP integration listening to ``trigger``."""
        context = {"ticket": ticket_view}
        faults = self.faults.get(SYSTEM)
        for integration in self._all("integration"):
            http = integration["http"]
            if integration["deactivated_datetime"] or not http["triggers"].get(trigger):
                continue
            event_id = uuid.uuid4().hex
            if self.faults.chance(faults.webhook_drop_rate):
                self._log(
                    {
                        "integration_id": integration["id"],
                        "trigger": trigger,
                        "event_id": event_id,
                        "outcome": "dropped",
                    }
                )
                continue
            method, url, headers, body = _request_for(http, context)
            copies = 2 if self.faults.chance(faults.webhook_duplicate_rate) else 1
            for _ in range(copies):
                due = time.monotonic() + faults.webhook_delay_ms / 1000
                self._enqueue(
                    Delivery(
                        due, next(self._seq), integration["id"], trigger, event_id, method, url, headers, body
                    )
                )

    def _enqueue(self, delivery: Delivery) -> None:
        with self._cond:
            heapq.heappush(self._deliveries, delivery)
            self._cond.notify_all()

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.delivery_log.append(entry)

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                due = self._deliveries[0].due - time.monotonic() if self._deliveries else None
                if due is None or due > 0:
                    self._cond.wait(timeout=0.2 if due is None else min(due, 0.2))
                    continue
                delivery = heapq.heappop(self._deliveries)
            try:
                self._deliver(delivery)
            except Exception:  # the delivery thread must survive a reset racing a call
                log.exception("gorgias sandbox: delivering %s failed", delivery.event_id)

    def _deliver(self, delivery: Delivery) -> None:
        integration = self.world.get(SYSTEM, "integration", delivery.integration_id)
        entry = {
            "integration_id": delivery.integration_id,
            "trigger": delivery.trigger,
            "event_id": delivery.event_id,
        }
        if integration is None or integration["deactivated_datetime"]:
            self._log({**entry, "outcome": "deactivated"})
            return
        status: int | None = None
        error: str | None = None
        try:
            with httpx.Client(timeout=httpx.Timeout(self.delivery.timeout_seconds, connect=1.0)) as client:
                response = client.request(
                    delivery.method, delivery.url, content=delivery.body, headers=delivery.headers
                )
            status = response.status_code
        except httpx.HTTPError as failure:
            error = type(failure).__name__
        ok = status is not None and 200 <= status < 300
        self._log(
            {
                **entry,
                "url": delivery.url,
                "headers": delivery.headers,
                "body": delivery.body.decode() if delivery.body else None,
                "status": status,
                "error": error,
                "attempt": delivery.attempt + 1,
                "outcome": "delivered" if ok else "failed",
            }
        )
        if ok:
            with self._lock:
                self._failures[delivery.integration_id] = 0  # a success ends the run of failures
            return
        if self._count_failure(delivery.integration_id):
            return
        if delivery.attempt + 1 < self.delivery.attempts:
            delivery.attempt += 1
            delivery.due = time.monotonic() + self.delivery.backoff_seconds * 2 ** (delivery.attempt - 1)
            delivery.seq = next(self._seq)
            self._enqueue(delivery)

    def _count_failure(self, integration_id: int) -> bool:
        """100 consecutive failed calls (retries included) disable the integration, as Gorgias does;
        True when this failure disabled it."""
        with self._lock:
            failures = self._failures.get(integration_id, 0) + 1
            self._failures[integration_id] = failures
        if failures < FAILURES_BEFORE_DEACTIVATION:
            return False
        with self.world.tx():
            integration = self.world.get(SYSTEM, "integration", integration_id)
            if integration is not None and not integration["deactivated_datetime"]:
                integration["deactivated_datetime"] = _now_text(self.world)
                self._save("integration", integration)
        log.info(
            "gorgias HTTP integration %s deactivated after %d consecutive failures", integration_id, failures
        )
        return True

    # -- control plane --------------------------------------------------------------------------
    def _control(self, handler):
        async def endpoint(request: Request) -> Response:
            try:
                payload = await _json_payload(request)
                status, body = await run_in_threadpool(
                    self._run_control, handler, dict(request.path_params), {} if payload is None else payload
                )
            except GorgiasError as error:
                return error_response(error.status, error.msg)
            return JSONResponse(body, status_code=status)

        return endpoint

    def _run_control(self, handler, path, payload) -> tuple[int, Any]:
        if not isinstance(payload, dict):
            raise GorgiasError(400, "The body must be a JSON object.")
        with self.world.tx():
            return handler(path, payload)

    def customer_writes_in(self, path, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        email = _text(data, "customer_email").lower()
        subject, text = _text(data, "subject"), _text(data, "body_text")
        channel = data.get("channel", "email")
        tags = data.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise GorgiasError(400, "tags must be a list of tag names.")
        customer = self._customer_ref({"email": email, "name": data.get("customer_name")}, create=True)
        message = _incoming(customer, subject, text, channel)
        body_out = {
            "customer": {"id": customer["id"]},
            "channel": channel,
            "via": "email" if channel == "email" else "api",
            "subject": subject,
            "messages": [message],
            "tags": [{"name": t} for t in tags],
        }
        return self.create_ticket({}, {}, body_out)

    def customer_writes_again(self, path, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        ticket = self._load("ticket", path["id"], "Ticket")
        if not ticket["customer_id"]:
            raise GorgiasError(400, "The ticket has no customer.")
        customer = self._load("customer", ticket["customer_id"], "Customer")
        subject = data.get("subject") or f"Re: {ticket['subject'] or ''}".strip()
        message = _incoming(customer, subject, _text(data, "body_text"), ticket["channel"])
        return self.create_message({"id": ticket["id"]}, {}, message)

    def configure_sending(self, path, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "fail" in body:
            self.sending.fail = _bool(body["fail"], "fail")
        if "error" in body:
            self.sending.error = str(body["error"])
        if "delay_seconds" in body:
            self.sending.delay_seconds = _number(body["delay_seconds"], "delay_seconds")
        return 200, dict(vars(self.sending))

    def configure_limits(self, path, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "enterprise" in body:
            self.bucket.configure(enterprise=_bool(body["enterprise"], "enterprise"))
        if body.get("frozen_clock") is True:
            self.bucket.freeze()
        elif body.get("frozen_clock") is False:
            self.bucket.configure(enterprise=self.bucket.window == ENTERPRISE_WINDOW_SECONDS)
        if "advance_seconds" in body:
            try:
                self.bucket.advance(_number(body["advance_seconds"], "advance_seconds"))
            except ValueError as error:
                raise GorgiasError(400, str(error)) from error
        return 200, {"window_seconds": self.bucket.window, "frozen_clock": self.bucket.frozen}

    def configure_delivery(self, path, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "attempts" in body:
            self.delivery.attempts = max(1, int(_number(body["attempts"], "attempts")))
        if "backoff_seconds" in body:
            self.delivery.backoff_seconds = _number(body["backoff_seconds"], "backoff_seconds")
        if "timeout_seconds" in body:
            self.delivery.timeout_seconds = _number(body["timeout_seconds"], "timeout_seconds")
        if "creation_fires_message_created" in body:
            self.delivery.creation_fires_message_created = _bool(
                body["creation_fires_message_created"], "creation_fires_message_created"
            )
        return 200, dict(vars(self.delivery))

    def configure_lost_responses(self, path, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status = int(_number(body.get("status", 502), "status"))
        if not 500 <= status <= 599:
            raise GorgiasError(400, "status must be a 5xx status.")
        with self._lock:
            self._lost = {"count": int(_number(body.get("count", 1), "count")), "status": status}
            return 200, dict(self._lost)

    def integration_health(self, path, body=None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            failures = dict(self._failures)
            log_entries = list(self.delivery_log)
        data = []
        for integration in self._all("integration"):
            mine = [e for e in log_entries if e["integration_id"] == integration["id"]]
            data.append(
                {
                    **integration,
                    "consecutive_failures": failures.get(integration["id"], 0),
                    "calls_delivered": sum(e["outcome"] == "delivered" for e in mine),
                    "calls_failed": sum(e["outcome"] == "failed" for e in mine),
                    "calls_dropped": sum(e["outcome"] == "dropped" for e in mine),
                }
            )
        return 200, {"data": data}

    def deliveries(self, path, body=None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            entries = list(self.delivery_log)
            pending = len(self._deliveries)
        return 200, {"deliveries": entries, "pending": pending}


def _request_for(
    http: dict[str, Any], context: dict[str, Any]
) -> tuple[str, str, dict[str, str], bytes | None]:
    """The rendered call of one HTTP integration: method, URL, headers (no signature), body."""
    url = render_template(http["url"], context, quote=True)
    headers = {str(k): render_template(str(v), context) for k, v in (http.get("headers") or {}).items()}
    form = http.get("form")
    rendered = render_form(form, context) if form else context["ticket"]  # no form: the ticket JSON
    method = http["method"]
    if method == "GET":
        if isinstance(rendered, dict):
            joiner = "&" if "?" in url else "?"
            url = f"{url}{joiner}{urllib.parse.urlencode({k: str(v) for k, v in rendered.items()})}"
        return method, url, headers, None
    content_type = http.get("request_content_type") or "application/json"
    headers.setdefault("Content-Type", content_type)
    if content_type == "application/x-www-form-urlencoded" and isinstance(rendered, dict):
        body = urllib.parse.urlencode({k: str(v) for k, v in rendered.items()}).encode()
    elif isinstance(rendered, str):
        body = rendered.encode()
    else:
        body = json.dumps(rendered).encode()
    return method, url, headers, body


def _valid_http(http: Any, current: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(http, dict):
        raise GorgiasError(400, "http must be an object.")
    unknown = sorted(set(http) - INTEGRATION_HTTP_FIELDS)
    if unknown:
        raise GorgiasError(400, f"Unknown http fields: {', '.join(unknown)}.")
    merged = {
        "method": "POST",
        "headers": {},
        "form": None,
        "request_content_type": "application/json",
        "response_content_type": "application/json",
        "triggers": {},
        **(current or {}),
        **http,
    }
    url = merged.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise GorgiasError(400, "http.url must be an http(s) URL.")
    merged["method"] = str(merged["method"]).upper()
    if merged["method"] not in HTTP_METHODS:
        raise GorgiasError(400, f"http.method must be one of {', '.join(HTTP_METHODS)}.")
    headers = merged["headers"] or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise GorgiasError(400, "http.headers must map names to strings.")
    if merged["form"] is not None and not isinstance(merged["form"], dict | str):
        raise GorgiasError(400, "http.form must be an object or a template string.")
    if merged["request_content_type"] not in CONTENT_TYPES:
        raise GorgiasError(400, f"http.request_content_type must be one of {', '.join(CONTENT_TYPES)}.")
    triggers = merged["triggers"]
    if not isinstance(triggers, dict) or not all(isinstance(v, bool) for v in triggers.values()):
        raise GorgiasError(400, "http.triggers must map trigger names to true or false.")
    unknown = sorted(set(triggers) - set(TRIGGERS))
    if unknown:
        raise GorgiasError(400, f"Unknown triggers: {', '.join(unknown)}; one of {', '.join(TRIGGERS)}.")
    return merged


def _incoming(customer: dict[str, Any], subject: str, text: str, channel: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "via": "email" if channel == "email" else "api",
        "from_agent": False,
        "sender": {"id": customer["id"]},
        "subject": subject,
        "body_text": text,
        "source": {
            "type": channel,
            "from": {"address": customer["email"], "name": customer["name"]},
            "to": [{"address": credentials.GORGIAS["support_address"], "name": "Support"}],
        },
    }


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise GorgiasError(400, "The body must be a JSON object.")
    return dict(body)


def _choice(value: Any, allowed, name: str) -> str:
    if value not in allowed:
        raise GorgiasError(400, f"{name} {value!r} is not one of the accepted values.")
    return value


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise GorgiasError(400, f"{name} must be an integer.")
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise GorgiasError(400, f"{name} must be an integer.") from error


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise GorgiasError(400, f"{name} is required.")
    return value.strip()


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise GorgiasError(400, f"{name} must be true or false.")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise GorgiasError(400, f"{name} must be a number of at least 0.")
    return float(value)


async def _json_payload(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise GorgiasError(400, "The body is not valid JSON.") from error
