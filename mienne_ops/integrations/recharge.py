"""Typed client and Dagster resource for Recharge, the subscription biller (API version 2021-11).

Recharge bills Mienne's subscriptions; each successful charge creates a Shopify order. Flow F uses
this client to find a customer (by email or Shopify customer id), list, cancel or move subscriptions,
skip a queued charge, find the charge behind a Shopify order and refund it, and to read refunded
charges for the daily reconciliation. Facts come from ``shared/docs/api/recharge.md``:

- Every request sends ``X-Recharge-Access-Token`` and ``X-Recharge-Version: 2021-11`` (cursor
  envelopes, lowercase statuses). A page is at most 250 records; with ``cursor`` only ``cursor`` and
  ``limit`` are sent (the other filters are locked into the cursor).
- Timestamps are US/Eastern store time without an offset; the models carry aware datetimes.
- ``GET /subscriptions`` has no email filter: the customer is resolved by email first.
- Rate limit: a leaky bucket (40 calls, leaking 2/s) answered 429 without a usage header or a
  documented ``Retry-After``; Recharge's guidance is to wait at least 2 s, so the transport adds that
  hint to a bare 429 and the shared HTTP core waits for it.
- Errors may be ``{"errors": {...}}``, ``{"errors": "..."}`` or ``{"error": "..."}``: the client
  branches on the HTTP status only. A 409 (a charge being processed) is transient here.

Recharge has no idempotency key. Every write is made idempotent by reading first: a cancelled
subscription is returned unchanged, a skipped charge is returned, and a refund is decided by the
charge's ``total_refunds`` (see `RechargeClient.refund_charge` for the rule).

Webhooks (`verify_webhook`): the newer ``X-Recharge-Webhook-Signature: t=<epoch>,v1=<hex>`` HMAC is
preferred; the legacy ``X-Recharge-Hmac-Sha256`` (plain SHA-256 of secret + body, not an HMAC) is
accepted only when the new header is absent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, Field

from mienne_ops.errors import (
    AmbiguousWriteError,
    PermanentError,
    RemoteValidationError,
    TransientError,
)
from mienne_ops.integrations.http import HttpCore
from mienne_ops.integrations.resource import ClientResource

SYSTEM = "recharge"
API_VERSION = "2021-11"
STORE_TIMEZONE = "America/New_York"
MAX_PAGE = 250
MAX_COMMENTS = 1024
CENT = Decimal("0.01")
SIGNATURE_TOLERANCE = timedelta(hours=48)
# A refund whose answer was lost (5xx after sending, a timeout) is re-read; statuses that mean
# "Recharge may have applied it" are returned by the core instead of being retried blindly.
AMBIGUOUS_STATUSES = (500, 502, 503, 504)
REFUND_ATTEMPTS = 3
#: The topics mienne-ops registers (`RechargeClient.subscribe_webhooks`).
WEBHOOK_TOPICS = (
    "subscription/cancelled",
    "subscription/skipped",
    "subscription/updated",
    "charge/paid",
    "charge/refunded",
)

log = logging.getLogger("mienne_ops.integrations.recharge")


# -- models -------------------------------------------------------------------------------------
class RechargeCustomer(BaseModel):
    id: int
    email: str
    first_name: str | None = None
    last_name: str | None = None
    shopify_customer_id: str | None = None  # external_customer_id.ecommerce
    status: str | None = None


class RechargeSubscription(BaseModel):
    id: int
    customer_id: int
    address_id: int
    status: str  # "active" | "cancelled" | "expired"
    next_charge_scheduled_at: date | None = None
    sku: str | None = None
    quantity: int
    price: Decimal
    product_title: str | None = None
    cancellation_reason: str | None = None
    cancelled_at: datetime | None = None


class RechargeCharge(BaseModel):
    id: int
    customer_id: int
    status: str  # lowercase: queued, success, skipped, refunded, partially_refunded, error, ...
    total_price: Decimal
    total_refunds: Decimal = Decimal("0.00")
    currency: str = "USD"
    shopify_order_id: str | None = None  # external_order_id.ecommerce
    scheduled_at: date | None = None
    processed_at: datetime | None = None
    subscription_ids: list[int] = Field(default_factory=list)  # line_items[].purchase_item_id
    updated_at: datetime | None = None

    @property
    def refundable(self) -> Decimal:
        return self.total_price - self.total_refunds


# -- time -----------------------------------------------------------------------------------------
def parse_store_time(value: str | None, zone: ZoneInfo) -> datetime | None:
    """A Recharge timestamp (store time without an offset) as an aware UTC datetime."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def store_time(moment: datetime, zone: ZoneInfo) -> str:
    """An aware datetime as Recharge writes it: store time, no offset (naive input means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def _ecommerce_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("ecommerce")
    return None if value in (None, "") else str(value)


def parse_customer(raw: dict[str, Any]) -> RechargeCustomer:
    return RechargeCustomer(
        id=raw["id"],
        email=raw.get("email") or "",
        first_name=raw.get("first_name"),
        last_name=raw.get("last_name"),
        shopify_customer_id=_ecommerce_id(raw.get("external_customer_id")),
        status=(raw.get("status") or None) and str(raw["status"]).lower(),
    )


def parse_subscription(raw: dict[str, Any], zone: ZoneInfo) -> RechargeSubscription:
    return RechargeSubscription(
        id=raw["id"],
        customer_id=raw["customer_id"],
        address_id=raw["address_id"],
        status=str(raw.get("status") or "").lower(),
        next_charge_scheduled_at=_date(raw.get("next_charge_scheduled_at")),
        sku=raw.get("sku"),
        quantity=int(raw.get("quantity") or 0),
        price=Decimal(str(raw.get("price") or "0")),
        product_title=raw.get("product_title"),
        cancellation_reason=raw.get("cancellation_reason"),
        cancelled_at=parse_store_time(raw.get("cancelled_at"), zone),
    )


def parse_charge(raw: dict[str, Any], zone: ZoneInfo) -> RechargeCharge:
    customer = raw.get("customer") or {}
    return RechargeCharge(
        id=raw["id"],
        customer_id=customer.get("id") if customer.get("id") is not None else raw.get("customer_id"),
        status=str(raw.get("status") or "").lower(),
        total_price=Decimal(str(raw.get("total_price") or "0")),
        total_refunds=Decimal(str(raw.get("total_refunds") or "0")),
        currency=raw.get("currency") or "USD",
        shopify_order_id=_ecommerce_id(raw.get("external_order_id")),
        scheduled_at=_date(raw.get("scheduled_at")),
        processed_at=parse_store_time(raw.get("processed_at"), zone),
        subscription_ids=[
            int(line["purchase_item_id"])
            for line in raw.get("line_items") or []
            if line.get("purchase_item_id") is not None
        ],
        updated_at=parse_store_time(raw.get("updated_at"), zone),
    )


# -- errors and transport -----------------------------------------------------------------------
def describe_error(response: httpx.Response) -> tuple[str | None, str]:
    """Recharge's three error shapes, flattened into one message."""
    body = response.json()
    errors = body.get("errors", body.get("error"))
    if isinstance(errors, dict):
        parts = [
            f"{field}: {'; '.join(map(str, m if isinstance(m, list) else [m]))}"
            for field, m in errors.items()
        ]
        return None, ", ".join(parts) or response.reason_phrase
    return None, str(errors or response.reason_phrase)


class RateLimitHint(httpx.BaseTransport):
    """Adds ``Retry-After`` to a 429 that has none: Recharge's guidance is to wait >= 2 s, and the
    shared core honours the header (its own backoff starts far below a leaking bucket's pace)."""

    def __init__(self, inner: httpx.BaseTransport, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code == 429 and "retry-after" not in response.headers:
            response.headers["Retry-After"] = f"{self.seconds:g}"
        return response

    def close(self) -> None:
        self.inner.close()


# -- webhooks -----------------------------------------------------------------------------------
def verify_webhook(
    secret: str, raw_body: bytes, headers: Mapping[str, str], *, now: datetime | None = None
) -> bool:
    """True when a Recharge webhook is signed with ``secret`` (the API client secret).

    The new scheme wins whenever its header is present: ``t=<epoch>,v1=<hex>`` parsed by key (other
    keys such as a future ``v2=`` are ignored), ``v1 = HMAC-SHA256(secret, f"{t}." + body)``, and
    ``|now - t| <= 48 h``. Only without it is the legacy ``X-Recharge-Hmac-Sha256`` =
    ``sha256(secret + body).hexdigest()`` accepted.
    """
    if not secret:
        return False
    lowered = {key.lower(): value for key, value in headers.items()}
    signature = lowered.get("x-recharge-webhook-signature")
    if signature is not None:
        return _verify_timestamped(secret, raw_body, signature, lowered, now or datetime.now(UTC))
    legacy = lowered.get("x-recharge-hmac-sha256")
    if not legacy:
        return False
    digest = hashlib.sha256(secret.encode() + raw_body).hexdigest()
    return hmac.compare_digest(digest, legacy.strip().lower())


def _verify_timestamped(
    secret: str, raw_body: bytes, header: str, headers: Mapping[str, str], now: datetime
) -> bool:
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key.strip(), []).append(value.strip())
    stamp = (fields.get("t") or [headers.get("x-recharge-webhook-timestamp", "")])[0]
    try:
        sent = datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(now - sent) > SIGNATURE_TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate.lower()) for candidate in fields.get("v1", []))


def sign_webhook(secret: str, raw_body: bytes, timestamp: int) -> dict[str, str]:
    """Both signature headers as Recharge sends them (used by the sandbox's emitter and tests)."""
    v1 = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return {
        "X-Recharge-Hmac-Sha256": hashlib.sha256(secret.encode() + raw_body).hexdigest(),
        "X-Recharge-Webhook-Timestamp": str(timestamp),
        "X-Recharge-Webhook-Signature": f"t={timestamp},v1={v1}",
    }


def webhook_event_id(topic: str, raw_body: bytes) -> str:
    """Recharge sends no delivery id: a redelivery carries the same topic and body."""
    return hashlib.sha256(topic.encode() + raw_body).hexdigest()


# -- the client ---------------------------------------------------------------------------------
class RechargeClient:
    """Recharge's REST API (2021-11) over the shared HTTP core."""

    def __init__(self, core: HttpCore, *, client_secret: str = "", timezone: str = STORE_TIMEZONE) -> None:
        self.core = core
        self.client_secret = client_secret
        self.zone = ZoneInfo(timezone)

    def close(self) -> None:
        self.core.close()

    def verify_webhook(self, raw_body: bytes, headers: Mapping[str, str]) -> bool:
        return verify_webhook(self.client_secret, raw_body, headers)

    # -- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, operation: str, record: str | None = None, **kwargs) -> Any:
        try:
            response = self.core.request(method, path, operation=operation, record=record, **kwargs)
        except RemoteValidationError as error:
            if error.status == 409:  # a charge being processed: the same call works a little later
                raise TransientError(
                    error.detail, system=SYSTEM, operation=operation, record=record, status=409
                ) from error
            raise
        return response.json() if response.content else {}

    def _pages(self, path: str, key: str, params: dict[str, Any], *, operation: str) -> Iterator[dict]:
        """Every record of a cursor-paginated list; after the first page only cursor + limit go."""
        query: dict[str, Any] = {**params, "limit": MAX_PAGE}
        while True:
            body = self._call("GET", path, operation=operation, params=query)
            yield from body.get(key) or []
            cursor = body.get("next_cursor")
            if not cursor:
                return
            query = {"cursor": cursor, "limit": MAX_PAGE}

    # -- customers ------------------------------------------------------------------------------
    def customer_by_email(self, email: str) -> RechargeCustomer | None:
        wanted = email.strip().lower()
        found = [
            c
            for c in self._pages(
                "customers", "customers", {"email": email.strip()}, operation="customers_list"
            )
            if str(c.get("email") or "").strip().lower() == wanted
        ]
        return self._oldest_customer(found, "email")

    def customer_by_shopify_id(self, shopify_customer_id: str) -> RechargeCustomer | None:
        wanted = str(shopify_customer_id).rsplit("/", 1)[-1]  # a Shopify gid or the bare number
        found = [
            c
            for c in self._pages(
                "customers", "customers", {"external_customer_id": wanted}, operation="customers_list"
            )
            if _ecommerce_id(c.get("external_customer_id")) == wanted
        ]
        return self._oldest_customer(found, "shopify id")

    def _oldest_customer(self, found: list[dict], by: str) -> RechargeCustomer | None:
        if len(found) > 1:
            log.warning("recharge: %d customers match one %s; using the oldest", len(found), by)
        found.sort(key=lambda c: c["id"])
        return parse_customer(found[0]) if found else None

    # -- subscriptions --------------------------------------------------------------------------
    def subscriptions(self, customer_id: int, *, status: str | None = "active") -> list[RechargeSubscription]:
        params: dict[str, Any] = {"customer_id": customer_id}
        if status:
            params["status"] = status.lower()
        rows = self._pages("subscriptions", "subscriptions", params, operation="subscriptions_list")
        return [parse_subscription(row, self.zone) for row in rows]

    def subscription(self, subscription_id: int) -> RechargeSubscription:
        body = self._call(
            "GET",
            f"subscriptions/{subscription_id}",
            operation="subscriptions_get",
            record=str(subscription_id),
        )
        return parse_subscription(body["subscription"], self.zone)

    def cancel_subscription(
        self, subscription_id: int, *, reason: str, comments: str | None = None, send_email: bool = True
    ) -> RechargeSubscription:
        """Cancel with a reason; a subscription already cancelled is returned unchanged."""
        current = self.subscription(subscription_id)
        if current.status == "cancelled":
            return current
        if not reason.strip():
            raise ValueError("Recharge requires a cancellation reason")
        body: dict[str, Any] = {"cancellation_reason": reason, "send_email": send_email}
        if comments:
            if len(comments) > MAX_COMMENTS:  # Recharge refuses longer comments; keep the cancel
                log.info("recharge: cancellation comments cut to %d characters", MAX_COMMENTS)
            body["cancellation_reason_comments"] = comments[:MAX_COMMENTS]
        record = str(subscription_id)
        try:
            answer = self._call(
                "POST",
                f"subscriptions/{subscription_id}/cancel",
                operation="subscriptions_cancel",
                record=record,
                json=body,
            )
        except RemoteValidationError:
            # A retried cancel (or one racing another) may meet an already-cancelled subscription.
            again = self.subscription(subscription_id)
            if again.status == "cancelled":
                return again
            raise
        return parse_subscription(answer["subscription"], self.zone)

    def set_next_charge_date(self, subscription_id: int, day: date) -> RechargeSubscription:
        """Move the next charge; Recharge may merge it with another subscription's charge that day."""
        answer = self._call(
            "POST",
            f"subscriptions/{subscription_id}/set_next_charge_date",
            operation="subscriptions_set_next_charge_date",
            record=str(subscription_id),
            json={"date": day.isoformat()},
        )
        return parse_subscription(answer["subscription"], self.zone)

    # -- charges --------------------------------------------------------------------------------
    def charge(self, charge_id: int) -> RechargeCharge:
        body = self._call("GET", f"charges/{charge_id}", operation="charges_get", record=str(charge_id))
        return parse_charge(body["charge"], self.zone)

    def queued_charges(self, customer_id: int) -> list[RechargeCharge]:
        params = {"customer_id": customer_id, "status": "queued", "sort_by": "scheduled_at-asc"}
        return [
            parse_charge(r, self.zone)
            for r in self._pages("charges", "charges", params, operation="charges_list")
        ]

    def skip_charge(self, charge_id: int, subscription_ids: list[int]) -> RechargeCharge:
        """Skip these subscriptions on a queued charge; a charge already skipped is returned."""
        current = self.charge(charge_id)
        if current.status == "skipped":
            return current
        record = str(charge_id)
        try:
            answer = self._call(
                "POST",
                f"charges/{charge_id}/skip",
                operation="charges_skip",
                record=record,
                json={"purchase_item_ids": [int(i) for i in subscription_ids]},
            )
        except RemoteValidationError:
            again = self.charge(charge_id)
            if again.status == "skipped":
                return again
            raise
        return parse_charge(answer["charge"], self.zone)

    def charge_for_shopify_order(self, shopify_order_id: str) -> RechargeCharge | None:
        """The charge that produced this Shopify order (``GET /charges?external_order_id=``).

        Only an exact ``external_order_id.ecommerce`` match counts, so a filter the API ignored
        could never hand back someone else's charge.
        """
        wanted = str(shopify_order_id).rsplit("/", 1)[-1]  # "gid://shopify/Order/123" or "123"
        for row in self._pages("charges", "charges", {"external_order_id": wanted}, operation="charges_list"):
            if _ecommerce_id(row.get("external_order_id")) == wanted:
                return parse_charge(row, self.zone)
        return None

    def refund_charge(
        self,
        charge_id: int,
        amount: Decimal,
        *,
        full_refund: bool = False,
        expected_total_refunds_before: Decimal | None = None,
    ) -> RechargeCharge:
        """Refund ``amount`` of a paid charge, never twice (Recharge has no idempotency key).

        The rule: the charge is read first and its ``total_refunds`` is the baseline — or, when the
        caller passes ``expected_total_refunds_before`` (what it recorded before its first attempt,
        e.g. in the ledger), that value is. Then:

        - ``total_refunds == baseline``: nothing of this refund landed yet, it is sent;
        - ``total_refunds == baseline + amount``: it already landed (an earlier attempt or run whose
          answer was lost) and the charge is returned without sending anything;
        - anything else: someone else refunded this charge meanwhile; `PermanentError`, for a human.

        An ambiguous failure after sending (a 5xx, a timeout) is followed by the same read, so the
        refund is re-sent only when ``total_refunds`` proves it did not land. ``full_refund`` refunds
        what is left (``amount`` is then that remainder and must not exceed it).
        """
        amount = Decimal(amount).quantize(CENT)
        record = str(charge_id)
        current = self.charge(charge_id)
        baseline = (
            current.total_refunds
            if expected_total_refunds_before is None
            else (Decimal(expected_total_refunds_before).quantize(CENT))
        )
        if full_refund:
            amount = current.total_price - baseline
            if amount <= 0:
                raise PermanentError(
                    f"nothing left to refund (total_refunds {baseline})",
                    system=SYSTEM,
                    operation="charges_refund",
                    record=record,
                )
        if amount <= 0:
            raise ValueError(f"refund amount must be positive, got {amount}")
        for _attempt in range(REFUND_ATTEMPTS):
            if current.total_refunds == baseline + amount:
                return current
            if current.total_refunds != baseline:
                raise PermanentError(
                    f"total_refunds is {current.total_refunds}, expected {baseline} before this refund "
                    f"of {amount}: refunded by someone else meanwhile; reconcile by hand",
                    system=SYSTEM,
                    operation="charges_refund",
                    record=record,
                )
            answer = self._send_refund(charge_id, amount, full_refund)
            if answer is not None:
                return answer
            current = self.charge(charge_id)  # the answer was lost: did the refund land?
        raise AmbiguousWriteError(
            f"refund of {amount} unconfirmed after {REFUND_ATTEMPTS} attempts",
            system=SYSTEM,
            operation="charges_refund",
            record=record,
        )

    def _send_refund(self, charge_id: int, amount: Decimal, full_refund: bool) -> RechargeCharge | None:
        """One refund POST; None when its outcome is unknown (5xx or a lost answer)."""
        body = {"amount": str(amount), "full_refund": full_refund, "retry": False}
        try:
            response = self.core.request(
                "POST",
                f"charges/{charge_id}/refund",
                operation="charges_refund",
                record=str(charge_id),
                json=body,
                idempotent=False,
                ok_statuses=AMBIGUOUS_STATUSES,  # never resent by the core: re-read instead
            )
        except AmbiguousWriteError:
            return None
        except RemoteValidationError as error:
            if error.status == 409:
                raise TransientError(
                    error.detail, system=SYSTEM, operation="charges_refund", record=str(charge_id), status=409
                ) from error
            raise
        if response.status_code in AMBIGUOUS_STATUSES:
            log.info("recharge: refund of charge %s answered %d; re-reading", charge_id, response.status_code)
            return None
        return parse_charge(response.json()["charge"], self.zone)

    def iter_charges(
        self, *, updated_since: datetime, statuses: tuple[str, ...] = ("refunded", "partially_refunded")
    ) -> Iterator[RechargeCharge]:
        """Charges in these statuses updated since then (one listing per status; each charge once)."""
        seen: set[int] = set()
        for status in statuses:
            params = {
                "status": status.lower(),
                "updated_at_min": store_time(updated_since, self.zone),
                "sort_by": "updated_at-asc",
            }
            for row in self._pages("charges", "charges", params, operation="charges_list"):
                if row["id"] not in seen:
                    seen.add(row["id"])
                    yield parse_charge(row, self.zone)

    # -- webhooks -------------------------------------------------------------------------------
    def webhooks(self) -> list[dict[str, Any]]:
        return list(self._pages("webhooks", "webhooks", {}, operation="webhooks_list"))

    def subscribe_webhooks(self, address: str, topics: tuple[str, ...] = WEBHOOK_TOPICS) -> dict[str, int]:
        """One webhook per topic for ``address`` (idempotent: existing ones are kept) -> topic: id."""
        existing = {w["topic"]: w["id"] for w in self.webhooks() if w.get("address") == address}
        for topic in topics:
            if topic not in existing:
                body = self._call(
                    "POST",
                    "webhooks",
                    operation="webhooks_create",
                    record=topic,
                    json={"address": address, "topic": topic},
                    idempotent=False,
                )
                existing[topic] = body["webhook"]["id"]
        return {topic: existing[topic] for topic in topics}


class RechargeResource(ClientResource[RechargeClient]):
    """Recharge connection settings; ``base_url`` is ``https://api.rechargeapps.com`` or
    ``<sandbox>/recharge``; ``client_secret`` (the API client secret) verifies webhooks."""

    base_url: str
    access_token: str
    client_secret: str = ""
    store_timezone: str = STORE_TIMEZONE
    # Recharge's guidance after a 429 (no Retry-After is documented); tests shorten it.
    rate_limit_wait_seconds: float = 2.0

    def build_client(self) -> RechargeClient:
        core = HttpCore(
            system=SYSTEM,
            base_url=self.base_url,
            headers={
                "X-Recharge-Access-Token": self.access_token,
                "X-Recharge-Version": API_VERSION,
                "Accept": "application/json",
            },
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
            describe_error=describe_error,
            transport=RateLimitHint(
                httpx.HTTPTransport(limits=httpx.Limits(max_connections=20)), self.rate_limit_wait_seconds
            ),
        )
        return RechargeClient(core, client_secret=self.client_secret, timezone=self.store_timezone)
