"""Typed client and Dagster resource for the Gorgias helpdesk REST API (``shared/docs/api/gorgias.md``).

What the cancellation/refund flow (and later the support agent) needs: read a ticket and its
messages, poll recent tickets (the reconciliation path for HTTP-integration calls that never
arrived), post an internal note or a public email reply, replace or add tags, open or close a
ticket, and register the HTTP integration that calls our receiver.

Vendor facts the client relies on: HTTP Basic auth (user email + REST API key); cursor lists
``{"data", "meta": {"next_cursor"}}`` with ``limit`` ≤ 100; ``PUT /tickets/{id}`` with ``tags``
replaces the whole set; a message carries our ``external_id``; creating an outgoing message queues
it (Gorgias fills ``sent_datetime`` or ``failed_datetime`` later); the leaky bucket of 40 requests
per 20 s is reported on every answer as ``X-Gorgias-Account-Api-Call-Limit: used/limit``.

Posting a message is not idempotent at Gorgias, so ``post_*`` look for a message with the same
``external_id`` on the ticket first and again after an answer whose outcome is unknown (5xx, a
dropped connection): a retried run never posts the same reply twice. Errors are branched on the
HTTP status only (the error body ``{"error": {"msg"}}`` is the sandbox's, not documented).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel

from mienne_ops.errors import PermanentError, TransientError
from mienne_ops.integrations.http import HttpCore
from mienne_ops.integrations.resource import ClientResource

SYSTEM = "gorgias"
PAGE_LIMIT = 100
TICKET_STATUSES = ("open", "closed")
CALL_LIMIT_HEADER = "X-Gorgias-Account-Api-Call-Limit"
BUCKET_WINDOW_SECONDS = 20.0
# Unknown-outcome answers to a message create: the message may exist, so look before resending.
UNKNOWN_OUTCOME = (500, 502, 503, 504, 408)

log = logging.getLogger("mienne_ops.integrations.gorgias")


def describe_error(response: httpx.Response) -> tuple[str | None, str]:
    error = response.json().get("error") or {}
    if isinstance(error, dict):
        return None, str(error.get("msg") or response.reason_phrase)
    return None, str(error)


class GorgiasTicket(BaseModel):
    """The fields of a Gorgias ticket that mienne-ops reads."""

    id: int
    status: str
    subject: str | None = None
    channel: str | None = None
    via: str | None = None
    customer_id: int | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    tags: list[str] = []
    created_datetime: datetime
    updated_datetime: datetime | None = None

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> GorgiasTicket:
        customer = body.get("customer") or {}
        return cls(
            id=body["id"],
            status=body["status"],
            subject=body.get("subject"),
            channel=body.get("channel"),
            via=body.get("via"),
            customer_id=customer.get("id"),
            customer_email=customer.get("email"),
            customer_name=customer.get("name"),
            tags=[tag["name"] for tag in body.get("tags") or []],
            created_datetime=body["created_datetime"],
            updated_datetime=body.get("updated_datetime"),
        )


class GorgiasMessage(BaseModel):
    """One ticket message (customer email, agent reply or internal note)."""

    id: int
    ticket_id: int
    channel: str
    public: bool
    from_agent: bool
    body_text: str | None = None
    external_id: str | None = None
    sender_email: str | None = None
    created_datetime: datetime
    sent_datetime: datetime | None = None
    failed_datetime: datetime | None = None

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> GorgiasMessage:
        sender = body.get("sender") or {}
        return cls(
            id=body["id"],
            ticket_id=body["ticket_id"],
            channel=body["channel"],
            public=bool(body.get("public")),
            from_agent=bool(body.get("from_agent")),
            body_text=body.get("body_text"),
            external_id=body.get("external_id"),
            sender_email=sender.get("email"),
            created_datetime=body["created_datetime"],
            sent_datetime=body.get("sent_datetime"),
            failed_datetime=body.get("failed_datetime"),
        )


class CallPacer:
    """Slows down before Gorgias' leaky bucket overflows (instead of waiting out a 429).

    After each answer it reads ``used/limit``; once fewer than ``headroom`` calls are left, the next
    call waits until the bucket has leaked back to that headroom (``limit`` calls per 20 s).
    """

    def __init__(self, headroom: int = 4, sleep: Callable[[float], None] = time.sleep) -> None:
        self.headroom = headroom
        self.sleep = sleep
        self._wait = 0.0
        self._lock = threading.Lock()

    def before_call(self) -> None:
        with self._lock:
            wait, self._wait = self._wait, 0.0
        if wait > 0:
            log.debug("gorgias: %.2fs pause to stay under the rate limit", wait)
            self.sleep(wait)

    def after_call(self, header: str | None) -> None:
        used_limit = _parse_call_limit(header)
        if used_limit is None:
            return
        used, limit = used_limit
        over = used - (limit - self.headroom)
        with self._lock:
            self._wait = over * BUCKET_WINDOW_SECONDS / limit if over > 0 else 0.0


def _parse_call_limit(header: str | None) -> tuple[int, int] | None:
    used, _, limit = (header or "").partition("/")
    try:
        parsed = int(used), int(limit)
    except ValueError:
        return None
    return parsed if parsed[1] > 0 else None


class GorgiasClient:
    """Gorgias' REST API over the shared HTTP core."""

    def __init__(
        self,
        core: HttpCore,
        *,
        sender_user_id: int,
        support_address: str,
        pacer: CallPacer | None = None,
    ) -> None:
        self.core = core
        self.sender_user_id = sender_user_id
        self.support_address = support_address
        self.pacer = pacer or CallPacer(sleep=core.sleep)

    def close(self) -> None:
        self.core.close()

    def _request(self, method: str, path: str, *, operation: str, **kwargs: Any) -> httpx.Response:
        self.pacer.before_call()
        response = self.core.request(method, path, operation=operation, **kwargs)
        self.pacer.after_call(response.headers.get(CALL_LIMIT_HEADER))
        return response

    def _json(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        return self._request(method, path, operation=operation, **kwargs).json()

    def _pages(self, path: str, *, operation: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """Every item of a cursor list, page by page (``meta.next_cursor`` until it is empty)."""
        query: dict[str, Any] = {**(params or {}), "limit": PAGE_LIMIT}
        while True:
            body = self._json("GET", path, operation=operation, params=query)
            yield from body.get("data") or []
            cursor = (body.get("meta") or {}).get("next_cursor")
            if not cursor:
                return
            query = {**query, "cursor": cursor}

    # -- tickets --------------------------------------------------------------------------------
    def ticket(self, ticket_id: int) -> GorgiasTicket:
        return GorgiasTicket.from_api(self._ticket_body(ticket_id))

    def _ticket_body(self, ticket_id: int) -> dict[str, Any]:
        return self._json("GET", f"tickets/{ticket_id}", operation="tickets_get", record=str(ticket_id))

    def iter_tickets(self, *, created_since: datetime | None = None) -> Iterator[GorgiasTicket]:
        """Tickets, newest first; stops at the first one created before ``created_since``."""
        params = {"order_by": "created_datetime:desc"}
        for body in self._pages("tickets", operation="tickets_list", params=params):
            ticket = GorgiasTicket.from_api(body)
            if created_since is not None and ticket.created_datetime < created_since:
                return
            yield ticket

    def set_tags(self, ticket_id: int, names: list[str]) -> None:
        """Replace the ticket's tags with exactly ``names`` (unknown names are created by Gorgias)."""
        self._update_ticket(ticket_id, {"tags": [{"name": name} for name in _unique(names)]}, "set_tags")

    def add_tags(self, ticket_id: int, names: list[str]) -> None:
        """Add ``names`` to the ticket's tags, keeping the others (one server-side add, no race)."""
        wanted = _unique(names)
        if not wanted:
            return
        ids = self._tag_ids(wanted)
        self._request(
            "POST",
            f"tickets/{ticket_id}/tags",
            operation="tickets_tags_add",
            record=str(ticket_id),
            json={"ids": ids},
            idempotent=True,  # adding the same tag twice leaves the same set
        )

    def _tag_ids(self, names: list[str]) -> list[int]:
        """The account tag ids of ``names``, creating the tags that do not exist yet."""
        known = {tag["name"].lower(): tag["id"] for tag in self._pages("tags", operation="tags_list")}
        ids = []
        for name in names:
            tag_id = known.get(name.lower())
            if tag_id is None:
                created = self._json(
                    "POST", "tags", operation="tags_create", record=name, json={"name": name}
                )
                tag_id = created["id"]
            ids.append(tag_id)
        return ids

    def set_status(self, ticket_id: int, status: str) -> None:
        if status not in TICKET_STATUSES:
            raise ValueError(f"a Gorgias ticket status is one of {TICKET_STATUSES}, not {status!r}")
        self._update_ticket(ticket_id, {"status": status}, "set_status")

    def _update_ticket(self, ticket_id: int, changes: dict[str, Any], operation: str) -> None:
        self._request(
            "PUT",
            f"tickets/{ticket_id}",
            operation=f"tickets_{operation}",
            record=str(ticket_id),
            json=changes,
        )

    # -- messages -------------------------------------------------------------------------------
    def messages(self, ticket_id: int) -> list[GorgiasMessage]:
        path = f"tickets/{ticket_id}/messages"
        return [GorgiasMessage.from_api(body) for body in self._pages(path, operation="messages_list")]

    def post_internal_note(self, ticket_id: int, body_text: str, *, external_id: str) -> GorgiasMessage:
        """An internal note (never sent to the customer); once per ``external_id``."""
        message = {
            "channel": "internal-note",
            "via": "api",
            "from_agent": True,
            "sender": {"id": self.sender_user_id},
            "body_text": body_text,
            "body_html": _html(body_text),
            "external_id": external_id,
        }
        return self._post_once(ticket_id, message, external_id, "messages_note")

    def post_public_reply(self, ticket_id: int, body_text: str, *, external_id: str) -> GorgiasMessage:
        """An email reply to the ticket's customer (Gorgias sends it asynchronously); once per
        ``external_id``."""
        ticket = self._ticket_body(ticket_id)
        customer = ticket.get("customer") or {}
        if not customer.get("id") or not customer.get("email"):
            raise PermanentError(
                "the ticket has no customer email to reply to",
                system=SYSTEM,
                operation="messages_reply",
                record=str(ticket_id),
            )
        subject = ticket.get("subject") or ""
        message = {
            "channel": "email",
            "via": "api",
            "from_agent": True,
            "sender": {"id": self.sender_user_id},
            "receiver": {"id": customer["id"]},
            "subject": subject if subject.lower().startswith("re:") else f"Re: {subject}".strip(),
            "body_text": body_text,
            "body_html": _html(body_text),
            "external_id": external_id,
            "source": {
                "type": "email",
                "from": {"address": self.support_address, "name": ""},
                "to": [{"address": customer["email"], "name": customer.get("name") or ""}],
            },
        }
        return self._post_once(ticket_id, message, external_id, "messages_reply")

    def _find_message(self, ticket_id: int, external_id: str) -> GorgiasMessage | None:
        return next((m for m in self.messages(ticket_id) if m.external_id == external_id), None)

    def _post_once(
        self, ticket_id: int, message: dict[str, Any], external_id: str, operation: str
    ) -> GorgiasMessage:
        """Create the message unless one with ``external_id`` is on the ticket already.

        A 5xx (or a broken connection) may come after Gorgias created the message, so the core must
        not blindly resend it: such answers come back here, and the ticket is looked at again before
        the next try.
        """
        attempt = 0
        while True:
            attempt += 1
            existing = self._find_message(ticket_id, external_id)
            if existing is not None:
                return existing
            try:
                response = self._request(
                    "POST",
                    f"tickets/{ticket_id}/messages",
                    operation=operation,
                    record=str(ticket_id),
                    json=message,
                    idempotent=False,
                    ok_statuses=UNKNOWN_OUTCOME,
                )
            except TransientError:
                # AmbiguousWriteError (the connection broke after sending) and network errors.
                if attempt >= self.core.retry.max_attempts:
                    raise
            else:
                if response.status_code not in UNKNOWN_OUTCOME:
                    return GorgiasMessage.from_api(response.json())
                if attempt >= self.core.retry.max_attempts:
                    raise TransientError(
                        f"message create answered {response.status_code}",
                        system=SYSTEM,
                        operation=operation,
                        record=str(ticket_id),
                        status=response.status_code,
                    )
            self.core.stats.record_retry(SYSTEM)
            self.core.sleep(self.core.retry.backoff(attempt))

    # -- HTTP integrations ----------------------------------------------------------------------
    def http_integrations(self) -> list[dict[str, Any]]:
        """Every HTTP integration of the account (``deactivated_datetime`` set: Gorgias disabled it)."""
        return [
            integration
            for integration in self._pages("integrations", operation="integrations_list")
            if integration.get("type") == "http"
        ]

    def ensure_http_integration(
        self, *, name: str, url: str, headers: dict[str, str], triggers: list[str]
    ) -> int:
        """The id of the HTTP integration called ``name``, created or brought up to date (and
        re-activated if Gorgias disabled it after 100 failures)."""
        wanted = {
            "url": url,
            "method": "POST",
            "headers": headers,
            "form": webhook_form(triggers),
            "request_content_type": "application/json",
            "response_content_type": "application/json",
            "triggers": {trigger: True for trigger in triggers},
        }
        for integration in self._pages("integrations", operation="integrations_list"):
            if integration.get("type") != "http" or integration.get("name") != name:
                continue
            current = integration.get("http") or {}
            if integration.get("deactivated_datetime") or any(current.get(k) != v for k, v in wanted.items()):
                self._request(
                    "PUT",
                    f"integrations/{integration['id']}",
                    operation="integrations_update",
                    record=name,
                    json={"http": wanted, "deactivated_datetime": None},
                )
            return int(integration["id"])
        created = self._json(
            "POST",
            "integrations",
            operation="integrations_create",
            record=name,
            json={"name": name, "type": "http", "http": wanted},
        )
        return int(created["id"])


def webhook_form(triggers: list[str]) -> dict[str, str]:
    """The body our HTTP integration makes Gorgias send (see `mienne_ops.webhooks.receiver`).

    Only ``{{ticket.*}}`` variables are used (the documented ones); ``ticket.last_message.id`` names
    the message that triggered the call, ``ticket.updated_datetime`` tells calls apart if a tenant
    does not render it. A form cannot name its trigger, so ``event`` is the trigger only when the
    integration has exactly one (`mienne-ops gorgias connect` registers one per trigger).
    """
    return {
        "ticket_id": "{{ticket.id}}",
        "message_id": "{{ticket.last_message.id}}",
        "updated_datetime": "{{ticket.updated_datetime}}",
        "event": triggers[0] if len(triggers) == 1 else "ticket-event",
    }


WEBHOOK_SECRET_HEADER = "X-Mienne-Webhook-Secret"


def verify_webhook_secret(expected: str, given: str | None) -> bool:
    """Gorgias signs nothing: the integration sends our secret in a header, compared in constant time."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class GorgiasWebhook(BaseModel):
    """One call of our HTTP integration: the rendered `webhook_form`."""

    ticket_id: int
    message_id: int | None = None
    event: str = "ticket-event"
    updated_datetime: str | None = None

    @classmethod
    def parse(cls, body: Any) -> GorgiasWebhook:
        """The call's body; ValueError when it is not the form we registered."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        ticket_id = _positive_id(body.get("ticket_id"))
        if ticket_id is None:
            raise ValueError("ticket_id must be a ticket id")
        event = body.get("event")
        updated = body.get("updated_datetime")
        return cls(
            ticket_id=ticket_id,
            message_id=_positive_id(body.get("message_id")),
            event=event if isinstance(event, str) and event.strip() else "ticket-event",
            updated_datetime=updated if isinstance(updated, str) and updated else None,
        )

    @property
    def event_id(self) -> str:
        """The inbox key: a ticket and the message that triggered the call, so duplicate calls (and
        ``ticket-created`` plus ``ticket-message-created`` for one first message) are stored once.
        Should a tenant render no message id, the ticket's update time stands in for it."""
        if self.message_id is not None:
            return f"{self.ticket_id}:{self.message_id}"
        return f"{self.ticket_id}:{self.updated_datetime or uuid.uuid4().hex}"


def _positive_id(value: Any) -> int | None:
    """A rendered template's id: ``"123"`` or 123 (a form renders strings); anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.strip().lower(), name.strip())
    return [name for name in seen.values() if name]


def _html(text: str) -> str:
    from html import escape

    return "".join(f"<p>{escape(line)}</p>" for line in text.splitlines() or [""])


class GorgiasResource(ClientResource[GorgiasClient]):
    """Gorgias connection settings; ``base_url`` is ``https://<domain>.gorgias.com/api`` or
    ``<sandbox>/gorgias/api``. ``sender_user_id`` is the Gorgias user our notes and replies come
    from; ``support_address`` the support email address replies are sent from."""

    base_url: str
    email: str
    api_key: str
    sender_user_id: int
    support_address: str

    def build_client(self) -> GorgiasClient:
        core = HttpCore(
            system=SYSTEM,
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(self.email, self.api_key),
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
            describe_error=describe_error,
        )
        return GorgiasClient(core, sender_user_id=self.sender_user_id, support_address=self.support_address)
