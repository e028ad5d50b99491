"""Typed client and Dagster resource for DCL Logistics, the 3PL (``api.dclcorp.com``).

DCL reports business failures inside 2xx bodies (``error_code`` != 0), answers batch creates per order,
and has no idempotency key: a batch whose answer was lost (timeout, 5xx) is reconciled with
``GET /orders?order_numbers=`` and only the missing orders are sent again. "Order number already
exists" is treated as success only after a GET confirms the order is at DCL; the client never parses
error messages and relies on ``error_code == 0`` vs non-zero only (see ``shared/docs/api/dcl.md``).
Naive datetimes in DCL filters mean US Pacific local time; this client converts aware datetimes.

RMAs (ReturnTrak, dcl.md §9) are created with ``POST /rmas`` and read with ``GET /api/v2/rmas``
(≤ 50 per page). DCL has no idempotency key for them either: a rejected create whose ``rma_number``
a follow-up GET finds is the existing RMA (a re-run: its label is returned, ``created=False``), and
a create whose answer was lost (timeout, 5xx) is sent again only after a GET shows it absent. DCL
documents no error codes, so a refused return label is recognised by a rejection that names the
label when one was requested (our design choice, unverified) and raised with code
``label_refused``.

Where DCL's answer is undocumented the client takes every plausible one (dcl.md §4, §5): a batch
sent with ``allow_partial=true`` is read per order whatever the top-level ``error_code`` says (DCL
may also flag the batch when one order fails, although the good ones were created), and a list GET
that answers HTTP 200 with a non-zero code and no records ("No records found") is an empty page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel

from mienne_ops.domain.dcl_records import DclOrder, DclRma, Receipt, parse_dcl_order, parse_receipt, parse_rma
from mienne_ops.errors import AmbiguousWriteError, PermanentError, RemoteValidationError, TransientError
from mienne_ops.integrations.http import HttpCore
from mienne_ops.integrations.resource import ClientResource

SYSTEM = "dcl"
PACIFIC = ZoneInfo("America/Los_Angeles")
MAX_BATCH_ORDERS = 1000
MAX_ORDERS_PAGE = 100
MAX_ITEMS_PAGE = 500
# Order numbers per GET: keeps the query string short and one page covers the whole chunk.
ORDER_NUMBERS_PER_LOOKUP = 100
SERVER_ERRORS = (500, 502, 503, 504)
CANCELLED_STAGE = 2  # `order_stage` "Order Cancelled" (dcl.md §5)
MAX_RMAS_PAGE = 50  # GET /api/v2/rmas (dcl.md §3, §9)
LABEL_REFUSED = "label_refused"
REJECTION_STATUSES = (400, 409, 422)


@dataclass(frozen=True)
class RmaCreated:
    """What ``POST /rmas`` left at DCL: the RMA and its return label (None when none was asked)."""

    rma_number: str
    label_url: str | None
    tracking_number: str | None
    created: bool  # False: it already existed (a re-run)


class OrderResult(BaseModel):
    """DCL's verdict on one order of a batch."""

    order_number: str
    accepted: bool
    already_exists: bool = False
    error_code: int = 0
    error_message: str = ""

    @property
    def ok(self) -> bool:
        """The order is at DCL: created now, or confirmed to exist already."""
        return self.accepted or self.already_exists


def describe_error(response: httpx.Response) -> tuple[str | None, str]:
    body = response.json()
    return str(body.get("error_code")), str(body.get("error_message") or response.reason_phrase)


def to_dcl_datetime(moment: datetime) -> str:
    """DCL reads naive datetimes as US Pacific: aware values are converted, naive ones sent as they are."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(PACIFIC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DclClient:
    """DCL's REST API over the shared HTTP core."""

    def __init__(self, core: HttpCore, account_number: str, freight_account: str, api_root: str = "/api/v1"):
        self.core = core
        self.account_number = account_number
        self.freight_account = freight_account
        self.api_root = api_root.rstrip("/")

    def close(self) -> None:
        self.core.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, resource: str, *, operation: str, **kwargs: Any) -> dict[str, Any]:
        response = self.core.request(
            method, f"{self.api_root}/{resource}", operation=operation, inspect=self._inspect, **kwargs
        )
        return response.json()

    def _inspect(self, response: httpx.Response) -> None:
        """A 2xx with a non-zero ``error_code`` is a rejection (429s are handled by the core)."""
        body = response.json()
        code = body.get("error_code", 0)
        if code:
            raise RemoteValidationError(
                str(body.get("error_message") or "rejected"),
                system=SYSTEM,
                operation=str(response.request.url.path).rsplit("/", 1)[-1],
                status=response.status_code,
                code=str(code),
            )

    def _inspect_listing(self, response: httpx.Response, key: str) -> None:
        """A 200 with a non-zero code and no records is DCL's "no records found", not a failure."""
        body = response.json()
        if body.get("error_code") and response.status_code == 200 and not body.get(key):
            return
        self._inspect(response)

    # -- orders ---------------------------------------------------------------------------------
    def submit_batch(self, orders: list[dict], *, allow_partial: bool = True) -> list[OrderResult]:
        """Create orders (chunks of ≤ 1000); one result per order, in input order."""
        prepared = [self._with_accounts(order) for order in orders]
        results: list[OrderResult] = []
        for chunk in _chunks(prepared, MAX_BATCH_ORDERS):
            results.extend(self._submit_chunk(chunk, allow_partial))
        return results

    def _with_accounts(self, order: dict) -> dict:
        return {"account_number": self.account_number, "freight_account": self.freight_account, **order}

    def _submit_chunk(self, orders: list[dict], allow_partial: bool) -> list[OrderResult]:
        found_earlier: dict[str, OrderResult] = {}
        pending = orders
        attempt = 0
        while True:
            attempt += 1
            try:
                body = self._post_batch(pending, allow_partial)
            except (AmbiguousWriteError, TransientError) as error:
                if attempt >= self.core.retry.max_attempts:
                    raise
                # Some orders may have been created: keep those, resend only the missing ones.
                found_earlier.update(self._reconcile(pending))
                pending = [o for o in pending if o["order_number"] not in found_earlier]
                if not pending:
                    break
                self.core.sleep(error.retry_after or self.core.retry.backoff(attempt))
                continue
            found_earlier.update(self._results_from(body, pending, allow_partial))
            break
        return [found_earlier[order["order_number"]] for order in orders]

    def _post_batch(self, orders: list[dict], allow_partial: bool) -> dict[str, Any]:
        """POST once; a 5xx answer means "outcome unknown" because DCL may have created orders."""
        response = self.core.request(
            "POST",
            f"{self.api_root}/batches",
            operation="batches",
            json={"allow_partial": allow_partial, "orders": orders},
            idempotent=False,
            ok_statuses=SERVER_ERRORS,
        )
        if response.status_code in SERVER_ERRORS:
            raise AmbiguousWriteError(
                "batch answer lost; reconcile before resending",
                system=SYSTEM,
                operation="batches",
                status=response.status_code,
            )
        return response.json()

    def _reconcile(self, orders: list[dict]) -> dict[str, OrderResult]:
        numbers = [order["order_number"] for order in orders]
        existing = self._live(numbers)
        return {
            number: OrderResult(order_number=number, accepted=False, already_exists=True)
            for number in numbers
            if number in existing
        }

    def _results_from(
        self, body: dict[str, Any], orders: list[dict], allow_partial: bool
    ) -> dict[str, OrderResult]:
        statuses = body.get("order_statuses") or []
        top_code = body.get("error_code", 0)
        if top_code and allow_partial and statuses:
            # Per-order results are authoritative: good orders were created whatever the top says.
            top_code = 0
        if top_code and (allow_partial or not any(s.get("error_code") for s in statuses)):
            raise RemoteValidationError(
                str(body.get("error_message") or "batch rejected"),
                system=SYSTEM,
                operation="batches",
                code=str(top_code),
            )
        if top_code:
            return self._rejected_batch(body, orders)
        results = {}
        for order, status in zip(orders, statuses, strict=False):
            number = order["order_number"]
            code = int(status.get("error_code") or 0)
            results[number] = OrderResult(
                order_number=number,
                accepted=code == 0,
                error_code=code,
                error_message=str(status.get("error_message") or ""),
            )
        for order in orders[len(statuses) :]:
            number = order["order_number"]
            results[number] = OrderResult(
                order_number=number, accepted=False, error_code=-1, error_message="no status returned"
            )
        return self._confirm_duplicates(results)

    def _rejected_batch(self, body: dict[str, Any], orders: list[dict]) -> dict[str, OrderResult]:
        """allow_partial=false and one order failed: nothing was created; name the culprit."""
        statuses = {s.get("order_number"): s for s in body.get("order_statuses") or [] if s.get("error_code")}
        results = {}
        for order in orders:
            number = order["order_number"]
            own = statuses.get(number)
            results[number] = OrderResult(
                order_number=number,
                accepted=False,
                error_code=int(own["error_code"]) if own else int(body["error_code"]),
                error_message=str(own["error_message"])
                if own
                else "batch rejected because another order failed",
            )
        culprits = {n: r for n, r in results.items() if n in statuses}
        return {**results, **self._confirm_duplicates(culprits)}

    def _confirm_duplicates(self, results: dict[str, OrderResult]) -> dict[str, OrderResult]:
        """A rejected order that DCL already holds is an idempotent success (confirmed, not parsed)."""
        rejected = [number for number, result in results.items() if not result.accepted]
        if not rejected:
            return results
        existing = self._live(rejected)
        for number in rejected:
            if number in existing:
                results[number] = results[number].model_copy(update={"already_exists": True})
        return results

    def _live(self, order_numbers: list[str]) -> set[str]:
        """The numbers DCL holds as live orders. A cancelled order under the number is no proof that
        a create went through: an order DCL cancelled (a hold after dispatch) is sent again, and
        "already exists" must then mean the new one."""
        return {
            order["order_number"]
            for order in self.get_orders(order_numbers)
            if not (order.get("is_cancelled") or order.get("order_stage") == CANCELLED_STAGE)
        }

    def get_orders(self, order_numbers: list[str]) -> list[dict]:
        """The orders DCL holds among ``order_numbers`` (unknown numbers are simply absent)."""
        found: list[dict] = []
        for chunk in _chunks(list(dict.fromkeys(order_numbers)), ORDER_NUMBERS_PER_LOOKUP):
            found.extend(self.iter_orders(order_numbers=chunk))
        return found

    def iter_orders(
        self,
        *,
        modified_from: datetime | None = None,
        order_numbers: list[str] | None = None,
        page_size: int = MAX_ORDERS_PAGE,
    ) -> Iterator[dict]:
        """Orders page by page (extended dates); stops on a short or empty page."""
        params: dict[str, Any] = {"extended_date": "true"}
        if modified_from is not None:
            params["modified_from"] = to_dcl_datetime(modified_from)
        if order_numbers:
            params["order_numbers"] = ",".join(order_numbers)
        yield from self._pages("orders", "orders", params, min(page_size, MAX_ORDERS_PAGE))

    def orders(self, order_numbers: list[str]) -> list[DclOrder]:
        """`get_orders` parsed once into `DclOrder` models (lines, stage, shipments of either shape)."""
        return [parse_dcl_order(order) for order in self.get_orders(order_numbers)]

    def iter_parsed_orders(self, *, modified_from: datetime | None = None) -> Iterator[DclOrder]:
        """`iter_orders` parsed once into `DclOrder` models."""
        for order in self.iter_orders(modified_from=modified_from):
            yield parse_dcl_order(order)

    def cancel_order(self, order_number: str) -> bool:
        """True when the order is (now or already) cancelled; False when DCL says it is too late."""
        response = self.core.request(
            "PUT",
            f"{self.api_root}/orders/cancel",
            operation="orders_cancel",
            record=order_number,
            json={"account_number": self.account_number, "order_number": order_number},
        )
        if not response.json().get("error_code"):
            return True
        orders = self.get_orders([order_number])
        if not orders:
            self._inspect(response)  # unknown order: surface DCL's rejection
        return bool(orders[0].get("is_cancelled"))

    # -- RMAs (ReturnTrak) -----------------------------------------------------------------------
    @property
    def rma_root(self) -> str:
        """``/api/v2`` for the live API (RMAs have a v2), the sandbox root as it is."""
        return "/api/v2" if self.api_root.endswith("/api/v1") else self.api_root

    def create_rma(self, rma: dict) -> RmaCreated:
        """Create a return authorization (``account_number`` filled in); see the module docstring.

        Raises `RemoteValidationError` with code ``label_refused`` when DCL refuses the return label
        (nothing is created), `RemoteValidationError` for other rejections, `AmbiguousWriteError`
        when the answer was lost and the RMA has no number to look it up by.
        """
        body = {"account_number": self.account_number, **rma}
        number = str(rma["rma_number"]) if rma.get("rma_number") else None
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._post_rma(body, number)
            except (AmbiguousWriteError, TransientError) as error:
                if number is None or attempt >= self.core.retry.max_attempts:
                    raise
                existing = self._rma_or_none(number)
                if existing is not None:  # the lost answer's create went through
                    return _created(existing, created=True)
                self.core.sleep(error.retry_after or self.core.retry.backoff(attempt))
                continue
            data = response.json()
            code = data.get("error_code") or 0
            if not code and response.status_code < 300:
                return RmaCreated(
                    rma_number=str(data.get("rma_number") or number),
                    label_url=data.get("return_label_url") or None,
                    tracking_number=data.get("return_label_tracking_number") or None,
                    created=True,
                )
            return self._rma_rejected(response, body, number)

    def _post_rma(self, body: dict, number: str | None) -> httpx.Response:
        """POST once; a 5xx means "outcome unknown" (DCL may have created the RMA)."""
        response = self.core.request(
            "POST",
            f"{self.rma_root}/rmas",
            operation="rmas",
            record=number,
            json=body,
            idempotent=False,
            ok_statuses=(*REJECTION_STATUSES, *SERVER_ERRORS),
        )
        if response.status_code in SERVER_ERRORS:
            raise AmbiguousWriteError(
                "RMA answer lost; look it up before resending",
                system=SYSTEM,
                operation="rmas",
                record=number,
                status=response.status_code,
            )
        return response

    def _rma_rejected(self, response: httpx.Response, body: dict, number: str | None) -> RmaCreated:
        """DCL said no: an RMA already under the number is a re-run's (confirmed by a GET, never by
        the code); a refusal naming the label is ``label_refused``; anything else is raised."""
        if number is not None:
            existing = self._rma_or_none(number)
            if existing is not None:
                return _created(existing, created=False)
        data = response.json()
        code = str(data.get("error_code") or "")
        message = str(data.get("error_message") or "RMA rejected")
        context: dict[str, Any] = {
            "system": SYSTEM,
            "operation": "rmas",
            "record": number,
            "status": response.status_code,
        }
        about_label = "label" in message.lower() and "generate_return_service_label" not in message
        if body.get("generate_return_service_label") and about_label:
            raise RemoteValidationError(
                f"return label refused (DCL {code}): {message}", code=LABEL_REFUSED, **context
            )
        raise RemoteValidationError(message, code=code, **context)

    def _rma_or_none(self, rma_number: str) -> DclRma | None:
        return next((r for r in self.rmas([rma_number]) if r.rma_number == rma_number), None)

    def rmas(self, rma_numbers: list[str]) -> list[DclRma]:
        """The RMAs DCL holds among ``rma_numbers`` (unknown numbers are simply absent)."""
        found: list[DclRma] = []
        for chunk in _chunks(list(dict.fromkeys(rma_numbers)), MAX_RMAS_PAGE):
            found.extend(self._iter_rma_pages({"rma_numbers": ",".join(chunk)}))
        return found

    def iter_rmas(
        self, *, received_from: datetime | None = None, created_from: datetime | None = None
    ) -> Iterator[DclRma]:
        """RMAs page by page (≤ 50), in DCL's order; ``received_from`` selects RMAs with a receipt at
        or after it, ``created_from`` those created at or after it (datetimes as DCL reads them)."""
        params: dict[str, Any] = {}
        if received_from is not None:
            params["received_from"] = to_dcl_datetime(received_from)
        if created_from is not None:
            params["created_from"] = to_dcl_datetime(created_from)
        yield from self._iter_rma_pages(params)

    def _iter_rma_pages(self, params: dict[str, Any]) -> Iterator[DclRma]:
        page = 1
        while True:
            response = self.core.request(
                "GET",
                f"{self.rma_root}/rmas",
                operation="rmas",
                params={**params, "page": page, "page_size": MAX_RMAS_PAGE},
                inspect=lambda answer: self._inspect_listing(answer, "rmas"),
            )
            rows = response.json().get("rmas") or []
            for row in rows:
                try:
                    yield parse_rma(row)
                except ValueError as error:  # pydantic's ValidationError is a ValueError
                    raise PermanentError(
                        f"unreadable RMA record: {error}",
                        system=SYSTEM,
                        operation="rmas",
                        record=str(row.get("rma_number")) if isinstance(row, dict) else None,
                    ) from error
            if len(rows) < MAX_RMAS_PAGE:
                return
            page += 1

    # -- inventory and inbound ------------------------------------------------------------------
    def iter_items(
        self,
        *,
        item_numbers: Iterable[str] | None = None,
        inventory_type: str | None = None,
        page_size: int = MAX_ITEMS_PAGE,
    ) -> Iterator[dict]:
        """Inventory rows per item x inventory type (warehouse); use ``available``."""
        params: dict[str, Any] = {}
        if item_numbers:
            params["item_numbers"] = ",".join(item_numbers)
        if inventory_type:
            params["inventory_type"] = inventory_type
        yield from self._pages("items", "items", params, min(page_size, MAX_ITEMS_PAGE))

    def submit_po_notification(self, notification: dict) -> int:
        """Send an ASN; returns ``dcl_po_number`` (store it: DCL has no GET for notifications)."""
        body = {"account_number": self.account_number, **notification}
        data = self._call(
            "POST",
            "po_notifications",
            operation="po_notifications",
            record=str(notification.get("reference_transaction_number")),
            json=body,
        )
        return int(data["dcl_po_number"])

    def iter_po_receipts(
        self,
        *,
        received_from: datetime | None = None,
        dcl_po_number: int | str | None = None,
        page_size: int = 100,
    ) -> Iterator[dict]:
        """Receipts page by page; ``received_from`` is sent as DCL's Pacific date (day granularity)."""
        params: dict[str, Any] = {}
        if received_from is not None:
            params["received_from"] = to_dcl_datetime(received_from)[:10]
        if dcl_po_number:
            params["dcl_po_number"] = str(dcl_po_number)
        yield from self._pages("po_receipts", "po_receipts", params, min(page_size, 100))

    def iter_receipts(
        self,
        *,
        received_from: datetime | None = None,
        dcl_po_number: int | str | None = None,
        page_size: int = 100,
    ) -> Iterator[Receipt]:
        """`iter_po_receipts` parsed once into `Receipt` models, whichever field names the account
        uses; a receipt whose lines cannot be read comes with ``unreadable`` set (and its payload)."""
        for raw in self.iter_po_receipts(
            received_from=received_from, dcl_po_number=dcl_po_number, page_size=page_size
        ):
            yield parse_receipt(raw)

    def _pages(self, resource: str, key: str, params: dict[str, Any], page_size: int) -> Iterator[dict]:
        page = 1
        while True:
            response = self.core.request(
                "GET",
                f"{self.api_root}/{resource}",
                operation=resource,
                params={**params, "page": page, "page_size": page_size},
                inspect=lambda answer: self._inspect_listing(answer, key),
            )
            rows = response.json().get(key) or []
            yield from rows
            if len(rows) < page_size:
                return
            page += 1


def _created(rma: DclRma, *, created: bool) -> RmaCreated:
    return RmaCreated(
        rma_number=rma.rma_number,
        label_url=rma.return_label_url,
        tracking_number=rma.return_label_tracking_number,
        created=created,
    )


class DclResource(ClientResource[DclClient]):
    """DCL connection settings; ``base_url`` is ``https://api.dclcorp.com`` or ``<sandbox>/dcl``."""

    base_url: str
    username: str
    password: str
    account_number: str
    freight_account: str

    def build_client(self) -> DclClient:
        core = HttpCore(
            system=SYSTEM,
            base_url=self.base_url,
            auth=httpx.BasicAuth(self.username, self.password),
            headers={"Accept": "application/json"},
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
            describe_error=describe_error,
        )
        return DclClient(core, self.account_number, self.freight_account)
