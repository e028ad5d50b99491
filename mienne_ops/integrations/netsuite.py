"""The NetSuite client: SuiteTalk REST records, transforms and SuiteQL over the shared HTTP core.

Follows ``shared/docs/api/netsuite.md``. Requests are signed with Token-Based Authentication
(OAuth 1.0a, HMAC-SHA256) by oauthlib, never by hand. Creates, upserts and transforms answer
``204`` with a ``Location`` header whose last segment is the new internal id. NetSuite's account-wide
concurrency pool answers overflow with 429 and no ``Retry-After``; the core retries it with jittered
backoff, and a semaphore (held per HTTP attempt, not across backoff sleeps) keeps us from exhausting
the pool: per client by default, or for the whole deployment (every Celery worker) when
``MIENNE_LIMITER_URL`` names a Redis (`shared_limits`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from oauthlib.oauth1 import Client as OAuth1Client

from mienne_ops.domain.money import wire
from mienne_ops.domain.suiteql_rows import RowT, UnreadableRow, parse_row
from mienne_ops.errors import AmbiguousWriteError, PermanentError, RemoteValidationError
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.resource import ClientResource
from mienne_ops.integrations.shared_limits import SharedSemaphore, netsuite_semaphore

SYSTEM = "netsuite"
RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
MAX_PAGE_SIZE = 1000
AUTH_RETRIES = 2


def netsuite_host(account_id: str) -> str:
    """``1234567_SB1`` -> ``https://1234567-sb1.suitetalk.api.netsuite.com``."""
    return f"https://{account_id.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


def netsuite_realm(account_id: str) -> str:
    """The OAuth realm: the account id as NetSuite prints it (``1234567_SB1``)."""
    return account_id.upper().replace("-", "_")


class NetSuiteTbaAuth(httpx.Auth):
    """Signs every request (URL with its query; never the JSON body) with TBA HMAC-SHA256."""

    def __init__(
        self, account_id: str, consumer_key: str, consumer_secret: str, token_id: str, token_secret: str
    ) -> None:
        self._signer = OAuth1Client(
            consumer_key,
            client_secret=consumer_secret,
            resource_owner_key=token_id,
            resource_owner_secret=token_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            realm=netsuite_realm(account_id),
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Each attempt (retries included) gets a fresh nonce and timestamp: NetSuite rejects reuse.
        _, headers, _ = self._signer.sign(str(request.url), request.method)
        request.headers["Authorization"] = headers["Authorization"]
        yield request


class BoundedTransport(httpx.BaseTransport):
    """Caps in-flight requests; held for each attempt only, so backoff frees a slot.

    The cap is this client's own semaphore, or ``shared`` — the deployment-wide one in Redis.
    """

    def __init__(
        self, inner: httpx.BaseTransport, max_concurrency: int, shared: SharedSemaphore | None = None
    ) -> None:
        self._inner = inner
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self.shared = shared

    def _slot(self) -> AbstractContextManager[Any]:
        return self.shared.slot() if self.shared else self._slots

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._slot():
            response = self._inner.handle_request(request)
            response.read()  # release the slot only once the body is in
            return response

    def close(self) -> None:
        self._inner.close()


def describe_netsuite_error(response: httpx.Response) -> tuple[str | None, str]:
    """(o:errorCode, detail) of NetSuite's problem-details body (first detail, trimmed)."""
    body = response.json()
    details = body.get("o:errorDetails") or []
    if not details:
        return None, str(body.get("title") or response.reason_phrase)[:300]
    first = details[0]
    message = str(first.get("detail") or body.get("title") or "")
    if first.get("o:errorPath"):
        message = f"{message} (at {first['o:errorPath']})"
    return first.get("o:errorCode"), message[:300]


def id_from_location(response: httpx.Response) -> str | None:
    """The internal id NetSuite puts as the last path segment of ``Location``."""
    location = response.headers.get("Location")
    if not location:
        return None
    return unquote(urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]) or None


#: Formats the product asks SuiteQL for: results otherwise come in the account's date preference
#: (``6/15/2024`` or ``15/6/2024``…), which the product never parses.
SUITEQL_DATE_FORMAT = "YYYY-MM-DD"
SUITEQL_DATETIME_FORMAT = "YYYY-MM-DD HH24:MI:SS"
_DATETIME_PARSE = "%Y-%m-%d %H:%M:%S"


def suiteql_date(column: str, alias: str, *, with_time: bool = False) -> str:
    """A SuiteQL select item giving a date column as ISO text: ``TO_CHAR(col, 'YYYY-MM-DD') AS alias``."""
    fmt = SUITEQL_DATETIME_FORMAT if with_time else SUITEQL_DATE_FORMAT
    return f"TO_CHAR({column}, '{fmt}') AS {alias}"


def parse_suiteql_datetime(value: Any) -> datetime | None:
    """A date-time selected with `suiteql_date(..., with_time=True)` (naive, the account's time zone)."""
    try:
        return datetime.strptime(str(value), _DATETIME_PARSE)
    except (TypeError, ValueError):
        return None


def suiteql_literal(value: str) -> str:
    """A SuiteQL string literal (quotes doubled), for the few lookups that embed a value."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class RmaLine:
    """One item line of a return authorization (from SuiteQL ``transactionline``)."""

    line: int  # the RMA's line id: ``orderLine`` of the RMA's item receipts and refunds
    item_id: str
    sku: str | None
    quantity: int
    quantity_received: int
    amount: Decimal  # positive
    is_closed: bool = False


@dataclass(frozen=True)
class RmaSummary:
    """A return authorization: ids, status letter (A..H, netsuite.md §10.2) and item lines."""

    id: str
    tran_id: str
    status: str
    lines: tuple[RmaLine, ...]


#: RMA letters after approval (receipts and refunds possible) and the final ones.
RMA_PENDING_APPROVAL, RMA_CANCELLED, RMA_REFUNDED, RMA_CLOSED = "A", "C", "G", "H"


class SuiteQLRow(dict):
    """A SuiteQL item: values are strings and a column NetSuite omitted (NULL) reads as None."""

    def __missing__(self, key: str) -> None:
        return None


class NetSuiteClient:
    """Typed access to the NetSuite REST record service and SuiteQL."""

    def __init__(self, core: HttpCore) -> None:
        self.core = core

    @classmethod
    def connect(
        cls,
        account_id: str,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
        *,
        base_url: str = "",
        max_concurrency: int = 4,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> NetSuiteClient:
        """Build the client; ``base_url`` empty = the account's own SuiteTalk host.

        ``max_concurrency`` caps this client, or the whole deployment when ``MIENNE_LIMITER_URL`` is
        set (a lease outlives any attempt, so only a killed worker's slot waits for it to expire).
        """
        auth = NetSuiteTbaAuth(account_id, consumer_key, consumer_secret, token_id, token_secret)
        shared = netsuite_semaphore(account_id, max_concurrency, lease_seconds=4 * timeout + 10)
        transport = BoundedTransport(httpx.HTTPTransport(), max_concurrency, shared)
        core = HttpCore(
            system=SYSTEM,
            base_url=base_url.rstrip("/") or netsuite_host(account_id),
            headers={"Accept": "application/json"},
            auth=auth,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
            describe_error=describe_netsuite_error,
            max_connections=max(max_concurrency, 1),
            # Spurious INVALID_LOGIN under concurrency is reported (netsuite.md §11); a revoked token
            # answers 401 to everything and ends in AuthError after three calls.
            auth_retries=AUTH_RETRIES,
        )
        return cls(core)

    def close(self) -> None:
        self.core.close()

    # -- SuiteQL ----------------------------------------------------------------------------------
    def suiteql(self, query: str, *, page_size: int = 1000) -> Iterator[dict]:
        """Every row of the query, page by page; values are strings, a missing column is None."""
        limit = max(1, min(page_size, MAX_PAGE_SIZE))
        offset = 0
        while True:
            response = self.core.request(
                "POST",
                SUITEQL,
                operation="suiteql",
                params={"limit": limit, "offset": offset},
                json={"q": query},
                headers={"Prefer": "transient"},
                idempotent=True,  # a read, safe to resend
            )
            page = response.json()
            for item in page.get("items", []):
                yield SuiteQLRow((key, value) for key, value in item.items() if key != "links")
            if not page.get("hasMore"):
                return
            offset += limit

    def suiteql_rows(
        self, model: type[RowT], query: str, *, page_size: int = 1000
    ) -> Iterator[RowT | UnreadableRow]:
        """Every row of the query parsed once into ``model`` (`domain.suiteql_rows`); a row that
        does not fit comes as an `UnreadableRow` (why, and the row) for its record's quarantine."""
        for raw in self.suiteql(query, page_size=page_size):
            yield parse_row(model, raw)

    def find_by_external_id(self, record_type_code: str, external_id: str) -> str | None:
        """Internal id of the transaction of this type code (``'ItemShip'``, ...) with the external id."""
        if not record_type_code.isalnum():
            raise ValueError(f"not a transaction type code: {record_type_code!r}")
        query = (
            f"SELECT id, tranid, externalid FROM transaction WHERE type = '{record_type_code}' "
            f"AND externalid = {suiteql_literal(external_id)}"
        )
        return next((row["id"] for row in self.suiteql(query)), None)

    def find_customer_by_email(self, email: str) -> str | None:
        """The oldest active customer with this email (case-insensitive), or None."""
        query = (
            "SELECT id FROM customer WHERE LOWER(email) = "
            f"{suiteql_literal(email.strip().lower())} AND isinactive = 'F' ORDER BY id"
        )
        return next((row["id"] for row in self.suiteql(query)), None)

    # -- records ----------------------------------------------------------------------------------
    def create(self, record_type: str, body: dict) -> str:
        """POST a new record; returns its internal id (from ``Location``)."""
        response = self.core.request(
            "POST", f"{RECORD}/{record_type}", operation=f"create {record_type}", json=body
        )
        return self._new_id(response, f"create {record_type}")

    def upsert(
        self, record_type: str, external_id: str, body: dict, *, replace: list[str] | None = None
    ) -> str:
        """Create or update by external id (``PUT …/eid:<id>``); returns the internal id.

        ``replace=["item"]`` makes the item sublist equal to the lines sent (default: merge).
        """
        path = f"{RECORD}/{record_type}/eid:{external_id}"
        params = {"replace": ",".join(replace)} if replace else None
        response = self.core.request(
            "PUT", path, operation=f"upsert {record_type}", record=external_id, params=params, json=body
        )
        new_id = id_from_location(response)
        if new_id is not None:
            return new_id
        return str(self.get(record_type, f"eid:{external_id}")["id"])

    def get(self, record_type: str, id_or_eid: str, *, expand: bool = False) -> dict:
        params = {"expandSubResources": "true"} if expand else None
        response = self.core.request(
            "GET",
            f"{RECORD}/{record_type}/{id_or_eid}",
            operation=f"get {record_type}",
            record=id_or_eid,
            params=params,
        )
        return response.json()

    def patch(self, record_type: str, id: str, body: dict) -> None:
        """Merge the fields sent into the record (lines with ``line`` update, without add)."""
        self.core.request(
            "PATCH", f"{RECORD}/{record_type}/{id}", operation=f"patch {record_type}", record=id, json=body
        )

    def transform(
        self, source_type: str, source_id: str, target_type: str, body: dict, *, record: str | None = None
    ) -> str:
        """Create ``target_type`` from a source record (e.g. fulfil a sales order); returns the new id."""
        response = self.core.request(
            "POST",
            f"{RECORD}/{source_type}/{source_id}/!transform/{target_type}",
            operation=f"transform {source_type}->{target_type}",
            record=record or source_id,
            json=body,
        )
        return self._new_id(response, f"transform {source_type}->{target_type}")

    # -- cancellations and refunds ------------------------------------------------------------------
    def close_sales_order(self, sales_order_id: str) -> bool:
        """Close every open line of the sales order (NetSuite's way to cancel it, netsuite.md §7);
        False when no line was open (already closed: nothing to do)."""
        record = self.get("salesOrder", sales_order_id, expand=True)
        lines = (record.get("item") or {}).get("items") or []
        open_lines = [{"line": line["line"], "isClosed": True} for line in lines if not line.get("isClosed")]
        if not open_lines:
            return False
        self.patch("salesOrder", sales_order_id, {"item": {"items": open_lines}})
        return True

    def cash_refund(self, *, source: tuple[str, str], external_id: str, body: dict) -> str:
        """Transform ``source`` = (recordType, id) into a cash refund, once per ``external_id``."""
        return self._transform_once(source, "cashRefund", "CashRfnd", external_id, body)

    def credit_memo(self, *, source: tuple[str, str], external_id: str, body: dict) -> str:
        """Transform ``source`` = (recordType, id) into a credit memo, once per ``external_id``."""
        return self._transform_once(source, "creditMemo", "CustCred", external_id, body)

    def return_authorization(self, *, source: tuple[str, str], external_id: str, body: dict) -> str:
        """Transform ``source`` (a sales order, cash sale or invoice) into an RMA, once per id."""
        return self._transform_once(source, "returnAuthorization", "RtnAuth", external_id, body)

    # -- return authorizations: approve, receive, close ------------------------------------------
    def return_authorization_summary(self, rma_id: str) -> RmaSummary:
        """The RMA's tranId, status letter and item lines (received quantities included), by SuiteQL
        (``transactionline.quantityshiprecv`` is the quantity received, netsuite.md §10.3)."""
        if not str(rma_id).isdigit():
            raise ValueError(f"not an internal id: {rma_id!r}")
        header = next(
            iter(
                self.suiteql(
                    f"SELECT id, tranid, status FROM transaction WHERE id = {rma_id} AND type = 'RtnAuth'"
                )
            ),
            None,
        )
        if header is None:
            raise PermanentError(
                f"no return authorization {rma_id}", system=SYSTEM, operation="return_authorization_summary"
            )
        query = (
            "SELECT l.id, l.item, i.itemid, ABS(l.quantity) AS quantity, l.quantityshiprecv, "
            "ABS(l.netamount) AS amount, l.isclosed FROM transactionline l "
            "LEFT JOIN item i ON i.id = l.item "
            f"WHERE l.transaction = {rma_id} AND l.mainline = 'F' AND l.taxline = 'F' "
            "AND l.kitmemberof IS NULL ORDER BY l.id"
        )
        lines = tuple(
            RmaLine(
                line=int(row["id"]),
                item_id=str(row["item"]),
                sku=row["itemid"],
                quantity=int(Decimal(row["quantity"] or "0")),
                quantity_received=int(Decimal(row["quantityshiprecv"] or "0")),
                amount=Decimal(row["amount"] or "0").quantize(Decimal("0.01")),
                is_closed=row["isclosed"] == "T",
            )
            for row in self.suiteql(query)
        )
        return RmaSummary(
            id=str(header["id"]), tran_id=header["tranid"], status=header["status"], lines=lines
        )

    def approve_return_authorization(self, rma_id: str) -> None:
        """Approve (``orderStatus`` B Pending Receipt) an RMA pending approval; an RMA already
        approved, or past that, is left as it is."""
        if self.return_authorization_summary(rma_id).status != RMA_PENDING_APPROVAL:
            return
        self.patch("returnAuthorization", rma_id, {"orderStatus": {"id": "B"}})

    def receive_return(self, rma_id: str, *, external_id: str, lines: list[tuple[int, int, str]]) -> str:
        """Receive returned goods on the RMA (``!transform/itemReceipt``), once per ``external_id``.

        ``lines`` are (RMA line id, quantity, location id); every other line of the RMA is marked
        ``itemReceive: false``. An item receipt that already carries ``external_id`` is returned as it
        is, never written twice. More than is left to receive, a closed line or an RMA not approved
        (or cancelled / closed) is a 400 (`RemoteValidationError`).
        """
        wanted = {int(line): (int(quantity), str(location)) for line, quantity, location in lines}
        if not wanted:
            raise ValueError("receive_return needs at least one line")
        items: list[dict[str, Any]] = [
            {"orderLine": line, "itemReceive": True, "quantity": quantity, "location": {"id": location}}
            for line, (quantity, location) in wanted.items()
        ]

        def write() -> str:
            others = [
                {"orderLine": line.line, "itemReceive": False}
                for line in self.return_authorization_summary(rma_id).lines
                if line.line not in wanted
            ]
            body = {"externalId": external_id, "item": {"items": items + others}}
            return self.transform("returnAuthorization", rma_id, "itemReceipt", body, record=external_id)

        return self._once("ItemRcpt", external_id, write)

    def close_return_authorization(self, rma_id: str) -> bool:
        """Nothing more will come back (an expired return): an RMA pending approval is cancelled
        (``orderStatus`` C), otherwise its open lines are closed (``isClosed``), which makes it
        H Closed once nothing is left to receive or refund (F Pending Refund while received goods
        wait for their refund). False when there was nothing to change (cancelled, closed, or no
        open line left)."""
        summary = self.return_authorization_summary(rma_id)
        if summary.status == RMA_PENDING_APPROVAL:
            self.patch("returnAuthorization", rma_id, {"orderStatus": {"id": RMA_CANCELLED}})
            return True
        if summary.status in (RMA_CANCELLED, RMA_CLOSED):
            return False
        open_lines = [{"line": line.line, "isClosed": True} for line in summary.lines if not line.is_closed]
        if not open_lines:
            return False
        self.patch("returnAuthorization", rma_id, {"item": {"items": open_lines}})
        return True

    def customer_refund(
        self,
        *,
        external_id: str,
        customer_id: str,
        credit_memo_id: str,
        amount: Decimal,
        payment_method_id: str | None = None,
    ) -> str:
        """Pay out ``amount`` of a credit memo (``POST customerRefund`` with the apply sublist of
        netsuite.md §9.4), once per ``external_id``."""
        body: dict[str, Any] = {
            "externalId": external_id,
            "customer": {"id": str(customer_id)},
            "apply": {"items": [{"doc": {"id": str(credit_memo_id)}, "apply": True, "amount": wire(amount)}]},
        }
        if payment_method_id is not None:
            body["paymentMethod"] = {"id": str(payment_method_id)}
        return self._once("CustRfnd", external_id, lambda: self.create("customerRefund", body))

    def refunds_between(self, start: date, end: date) -> list[dict]:
        """Cash refunds and customer refunds dated in ``[start, end)``: ``id``, ``type``
        (``CashRfnd`` / ``CustRfnd``), ``externalId``, ``tranDate`` (ISO), ``total`` (a positive
        decimal string; the sign NetSuite gives refunds is not relied on) and ``memo``."""
        query = (
            f"SELECT t.id, t.type, t.externalid, {suiteql_date('t.trandate', 'trandate')}, "
            "ABS(t.foreigntotal) AS total, t.memo FROM transaction t "
            "WHERE t.type IN ('CashRfnd', 'CustRfnd') "
            f"AND t.trandate >= TO_DATE('{start.isoformat()}', 'YYYY-MM-DD') "
            f"AND t.trandate < TO_DATE('{end.isoformat()}', 'YYYY-MM-DD') ORDER BY t.id"
        )
        return [
            {
                "id": row["id"],
                "type": row["type"],
                "externalId": row["externalid"],
                "tranDate": row["trandate"],
                "total": str(Decimal(row["total"] or "0").quantize(Decimal("0.01"))),
                "memo": row["memo"],
            }
            for row in self.suiteql(query)
        ]

    def _transform_once(
        self, source: tuple[str, str], target: str, type_code: str, external_id: str, body: dict
    ) -> str:
        source_type, source_id = source
        payload = {**body, "externalId": external_id}
        return self._once(
            type_code,
            external_id,
            lambda: self.transform(source_type, source_id, target, payload, record=external_id),
        )

    def _once(self, type_code: str, external_id: str, write: Callable[[], str]) -> str:
        """Write a record keyed by its externalId at most once.

        NetSuite has no idempotency key for synchronous writes (netsuite.md §13): the record is
        looked up by externalId first, and again after a failure whose outcome is unknown (a lost
        answer) or a refusal (a concurrent writer may have won: NetSuite refuses the duplicate,
        with a code the docs do not name, so the client looks instead of branching on it).
        """
        existing = self.find_by_external_id(type_code, external_id)
        if existing is not None:
            return existing
        try:
            return write()
        except (AmbiguousWriteError, RemoteValidationError):
            found = self.find_by_external_id(type_code, external_id)
            if found is None:
                raise
            return found

    @staticmethod
    def _new_id(response: httpx.Response, operation: str) -> str:
        new_id = id_from_location(response)
        if new_id is None:
            raise PermanentError("no Location header in the answer", system=SYSTEM, operation=operation)
        return new_id


class NetSuiteResource(ClientResource[NetSuiteClient]):
    """NetSuite TBA credentials and settings (secrets through `dg.EnvVar`)."""

    account_id: str
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str
    base_url: str = ""  # empty = derive the SuiteTalk host from the account id
    max_concurrency: int = 4

    def build_client(self) -> NetSuiteClient:
        return NetSuiteClient.connect(
            self.account_id,
            self.consumer_key,
            self.consumer_secret,
            self.token_id,
            self.token_secret,
            base_url=self.base_url,
            max_concurrency=self.max_concurrency,
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
        )


def client_for(credentials: dict[str, Any], base_url: str = "", **options: Any) -> NetSuiteClient:
    """A client from a credentials mapping such as `sandbox.credentials.NETSUITE`."""
    return NetSuiteClient.connect(
        credentials["account_id"],
        credentials["consumer_key"],
        credentials["consumer_secret"],
        credentials["token_id"],
        credentials["token_secret"],
        base_url=base_url,
        **options,
    )
