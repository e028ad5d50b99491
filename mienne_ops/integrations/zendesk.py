"""Typed client and Dagster resource for Zendesk Support: read a ticket, comment on it, tag it.

mienne-ops only answers on tickets customers opened (shared/docs/api/zendesk.md). Zendesk has no
"create comment" endpoint: a comment is a ticket update, ``PUT /api/v2/tickets/{id}.json`` with
``ticket.comment`` (``public`` defaults to TRUE, an emailed reply: internal notes must say
``public: false``). Tags in that update REPLACE the list, so tags are added through
``PUT /api/v2/tickets/{id}/tags.json`` instead.

Idempotency: comments carry no external id, so `ZendeskClient.add_comment` ends the comment with a
reference line (``ref: <dedupe_key>``) and, before every write, reads the ticket's comments and
returns the one already carrying that line. The write itself is a *safe update* (``safe_update`` +
the ``updated_stamp`` just read): if anything changed the ticket since (another agent, or our own
write whose answer was lost and is now being resent), Zendesk answers 409 and the client reads
again — so a resent or retried write never posts twice. A lost answer (timeout, 5xx) is treated the
same way: read the comments, then decide.

Limits: 429 + ``Retry-After`` is retried by the HTTP core; ``X-Rate-Limit-Remaining`` is kept on the
client (`rate_limit_remaining`) and a nearly spent budget is logged.

Webhooks: Zendesk signs them as base64(HMAC-SHA256(signing secret, timestamp + raw body)), the
timestamp in ``X-Zendesk-Webhook-Signature-Timestamp`` (`verify_webhook`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, Field

from mienne_ops.errors import AmbiguousWriteError, RemoteValidationError, TransientError
from mienne_ops.integrations.http import HttpCore
from mienne_ops.integrations.resource import ClientResource

SYSTEM = "zendesk"
PAGE_SIZE = 100
#: How often `add_comment` re-reads and retries after a conflict or a lost answer.
MAX_WRITE_ATTEMPTS = 6
#: Signature timestamps older (or further in the future) than this are refused (replays).
WEBHOOK_TOLERANCE = timedelta(minutes=5)
AMBIGUOUS_STATUSES = (500, 502, 503, 504)
REF_PREFIX = "ref: "

log = logging.getLogger("mienne_ops.integrations.zendesk")


class ZendeskTicket(BaseModel):
    id: int
    status: str
    subject: str | None = None
    requester_id: int | None = None
    requester_email: str | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ZendeskComment(BaseModel):
    id: int
    body: str
    public: bool
    author_id: int | None = None
    created_at: datetime


def describe_error(response: httpx.Response) -> tuple[str | None, str]:
    """Zendesk errors: ``{"error": "Code", "description": "..."}`` or ``{"error": {"title", "message"}}``."""
    body = response.json()
    error = body.get("error")
    if isinstance(error, dict):
        return error.get("title"), str(error.get("message") or response.reason_phrase)
    return (str(error) if error else None), str(body.get("description") or error or response.reason_phrase)


def reference_line(dedupe_key: str) -> str:
    return f"{REF_PREFIX}{dedupe_key.strip()}"


def carries_reference(body: str, dedupe_key: str) -> bool:
    line = reference_line(dedupe_key)
    return any(candidate.strip() == line for candidate in body.splitlines())


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: datetime | None = None,
    tolerance: timedelta = WEBHOOK_TOLERANCE,
) -> bool:
    """True when ``signature`` is Zendesk's signature of ``timestamp + body`` and the timestamp is
    within ``tolerance`` of ``now`` (a captured request replayed later is refused)."""
    if not secret or not signature or not timestamp:
        return False
    try:
        sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return False
    sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
    if abs((now or datetime.now(UTC)) - sent) > tolerance:
        return False
    # Bytes, not text: a forged non-ASCII header must be refused, not crash the comparison.
    expected = webhook_signature(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, signature.strip().encode())


class ZendeskClient:
    """Zendesk Support's REST API (tickets, comments, tags, users) over the shared HTTP core."""

    def __init__(self, core: HttpCore, author_id: int | None = None) -> None:
        self.core = core
        self.author_id = author_id
        self.rate_limit: int | None = None
        self.rate_limit_remaining: int | None = None

    def close(self) -> None:
        self.core.close()

    def _call(self, method: str, path: str, *, operation: str, record: str | None = None, **kwargs) -> Any:
        response = self.core.request(
            method, path, operation=operation, record=record, inspect=self._note_limits, **kwargs
        )
        return response

    def _note_limits(self, response: httpx.Response) -> None:
        limit, remaining = (
            response.headers.get("X-Rate-Limit"),
            response.headers.get("X-Rate-Limit-Remaining"),
        )
        if limit is None or remaining is None or not limit.isdigit() or not remaining.isdigit():
            return
        self.rate_limit, self.rate_limit_remaining = int(limit), int(remaining)
        if self.rate_limit_remaining < max(1, self.rate_limit // 10):
            log.warning(
                "zendesk: %d of %d requests left this minute", self.rate_limit_remaining, self.rate_limit
            )

    # -- reads ----------------------------------------------------------------------------------
    def _raw_ticket(self, ticket_id: int, *, include_users: bool = False) -> dict[str, Any]:
        params = {"include": "users"} if include_users else None
        return self._call(
            "GET",
            f"api/v2/tickets/{ticket_id}.json",
            operation="tickets_show",
            record=str(ticket_id),
            params=params,
        ).json()

    def ticket(self, ticket_id: int) -> ZendeskTicket:
        """The ticket, with its requester's email (sideloaded: ``?include=users``)."""
        body = self._raw_ticket(ticket_id, include_users=True)
        ticket = body["ticket"]
        requester_id = ticket.get("requester_id")
        email = next((u.get("email") for u in body.get("users") or [] if u.get("id") == requester_id), None)
        if email is None and requester_id is not None:
            email = self.user_email(requester_id)
        return ZendeskTicket(
            id=ticket["id"],
            status=ticket["status"],
            subject=ticket.get("subject"),
            requester_id=requester_id,
            requester_email=email,
            tags=ticket.get("tags") or [],
            created_at=ticket["created_at"],
            updated_at=ticket["updated_at"],
        )

    def user_email(self, user_id: int) -> str | None:
        user = self._call("GET", f"api/v2/users/{user_id}.json", operation="users_show", record=str(user_id))
        return user.json()["user"].get("email")

    def comments(self, ticket_id: int) -> list[ZendeskComment]:
        """Every comment of the ticket, oldest first (cursor pagination, all pages)."""
        found: list[ZendeskComment] = []
        params: dict[str, Any] = {"page[size]": PAGE_SIZE}
        while True:
            body = self._call(
                "GET",
                f"api/v2/tickets/{ticket_id}/comments.json",
                operation="comments_list",
                record=str(ticket_id),
                params=params,
            ).json()
            found.extend(_comment(raw) for raw in body.get("comments") or [])
            meta = body.get("meta") or {}
            if not meta.get("has_more") or not meta.get("after_cursor"):
                return found
            params = {"page[size]": PAGE_SIZE, "page[after]": meta["after_cursor"]}

    # -- writes ---------------------------------------------------------------------------------
    def add_comment(
        self, ticket_id: int, body: str, *, public: bool, dedupe_key: str, status: str | None = None
    ) -> ZendeskComment | None:
        """Post ``body`` (a public reply or, ``public=False``, an internal note) once per ``dedupe_key``.

        Returns the comment (the one posted earlier under this key, if any), or None when the ticket
        is closed (Zendesk refuses every update to a closed ticket: the customer must be reached on
        a follow-up ticket). ``status`` is set in the same update, atomically with the comment.
        """
        if not dedupe_key.strip() or any(c in dedupe_key for c in "\r\n"):
            raise ValueError("dedupe_key must be one non-empty line")
        text = f"{body.rstrip()}\n\n{reference_line(dedupe_key)}"
        record = f"{ticket_id}:{dedupe_key}"
        for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
            existing = self._find_comment(ticket_id, dedupe_key)
            if existing is not None:
                return existing
            ticket = self._raw_ticket(ticket_id)["ticket"]
            if ticket["status"] == "closed":
                log.warning("zendesk: ticket %s is closed; comment %s not posted", ticket_id, dedupe_key)
                return None
            comment: dict[str, Any] = {"body": text, "public": public}
            if self.author_id is not None:
                comment["author_id"] = self.author_id
            update: dict[str, Any] = {
                "comment": comment,
                "safe_update": True,
                "updated_stamp": ticket["updated_at"],
            }
            if status is not None:
                update["status"] = status
            try:
                response = self._call(
                    "PUT",
                    f"api/v2/tickets/{ticket_id}.json",
                    operation="tickets_update",
                    record=record,
                    json={"ticket": update},
                    # Not resent blindly: a lost answer is settled by reading the comments first.
                    idempotent=False,
                    ok_statuses=(409, *AMBIGUOUS_STATUSES),
                )
            except AmbiguousWriteError:
                log.info("zendesk: answer to comment %s lost; reading the ticket again", record)
                continue
            if response.status_code == 200:
                return _posted_comment(response.json(), dedupe_key)
            # 409: the ticket changed since we read it; 5xx: the write may or may not have landed.
            log.info("zendesk: comment %s got %d; reading the ticket again", record, response.status_code)
            self.core.sleep(self.core.retry.backoff(attempt))
        raise TransientError(
            f"ticket kept changing; comment not posted after {MAX_WRITE_ATTEMPTS} attempts",
            system=SYSTEM,
            operation="tickets_update",
            record=record,
        )

    def _find_comment(self, ticket_id: int, dedupe_key: str) -> ZendeskComment | None:
        return next((c for c in self.comments(ticket_id) if carries_reference(c.body, dedupe_key)), None)

    def add_tags(self, ticket_id: int, tags: list[str]) -> None:
        """Add ``tags`` to the ticket's tags (never replaces them; adding twice is harmless)."""
        if not tags:
            return
        self._call(
            "PUT",
            f"api/v2/tickets/{ticket_id}/tags.json",
            operation="tags_add",
            record=str(ticket_id),
            json={"tags": tags},
        )


def _comment(raw: dict[str, Any]) -> ZendeskComment:
    return ZendeskComment(
        id=raw["id"],
        body=raw.get("body") or raw.get("plain_body") or "",
        public=bool(raw.get("public", True)),
        author_id=raw.get("author_id"),
        created_at=raw["created_at"],
    )


def _posted_comment(answer: dict[str, Any], dedupe_key: str) -> ZendeskComment:
    """The comment our update created, from the audit's Comment event."""
    audit = answer.get("audit") or {}
    for event in audit.get("events") or []:
        if event.get("type") == "Comment" and carries_reference(event.get("body") or "", dedupe_key):
            return _comment({"created_at": audit.get("created_at"), **event})
    raise RemoteValidationError(
        "the update succeeded but its audit carries no comment", system=SYSTEM, operation="tickets_update"
    )


class ZendeskResource(ClientResource[ZendeskClient]):
    """Zendesk connection settings; ``base_url`` is ``https://<subdomain>.zendesk.com`` or
    ``<sandbox>/zendesk``. ``author_id`` (optional) is the agent comments are posted as; by default
    the API token's own user."""

    base_url: str
    email: str
    api_token: str
    author_id: int | None = None

    def build_client(self) -> ZendeskClient:
        core = HttpCore(
            system=SYSTEM,
            base_url=self.base_url,
            auth=httpx.BasicAuth(f"{self.email}/token", self.api_token),
            headers={"Accept": "application/json"},
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
            describe_error=describe_error,
        )
        return ZendeskClient(core, author_id=self.author_id)
