"""The NetSuite sandbox: SuiteTalk REST record API, transforms and SuiteQL over real HTTP.

Follows ``shared/docs/api/netsuite.md``. Mounted under ``/netsuite`` with NetSuite's own paths
(``/services/rest/record/v1/…``, ``/services/rest/query/v1/suiteql``). Every call must carry a TBA
(OAuth 1.0a, HMAC-SHA256) header, verified exactly with oauthlib against the URL the client signed;
failures are 401 ``INVALID_LOGIN``. An account-wide concurrency pool (default 5 in-flight requests)
answers the overflow with an immediate 429 ``CONCURRENCY_LIMIT_EXCEEDED``.

Control routes (under ``/_sandbox/netsuite``):

- ``POST /limits`` ``{"concurrency": N}`` sets the pool size (back to 5 on reset); ``{"hold": true}``
  keeps every request that gets a slot in flight (holding it) until ``{"hold": false}`` or a reset, so
  a test fills the pool on purpose instead of racing; the answer reports ``held``, ``in_flight``,
  ``max_in_flight`` (the most requests in flight at once) and ``refused`` (429s), both since the last
  reset
- ``POST /token`` ``{"revoked": true}`` revokes the integration's access token: every API call then
  answers 401 ``INVALID_LOGIN`` (NetSuite: ``TokenRevoked`` in the login audit trail) until
  ``{"revoked": false}`` or a reset; ``{"spurious_401_every": N}`` answers every Nth correctly signed
  call with 401 ``INVALID_LOGIN`` (the spurious 401s seen under concurrency, netsuite.md §11), 0 = off
- ``GET|POST /account`` ``{"one_world": true, "integrated_ship_methods": {"101": "ups"},
  "cash_sale_requires_payment_method": true}`` switches how the account is set up (see
  `netsuite_store.AccountSettings`; all off on reset)
- ``POST /preferences`` ``{"date_format": "D/M/YYYY"}`` sets the account's date format preference, which
  shapes every date SuiteQL returns (back to ``M/D/YYYY`` on reset); ``GET`` reads it
- returns and refunds (RMA, cash refund, credit memo, customer refund): see `netsuite_refunds`; the
  ``/account`` knobs ``direct_refund_transforms`` and ``refund_shipping_cost`` play NetSuite's
  unconfirmed answers (both on by default)
- ``POST /sales_orders/{id}/cancel`` closes every line (C Cancelled, or H Closed if partly shipped)
- ``POST /inventory`` ``{"item": id, "location": id, "quantityonhand": n}`` sets a stock level
- purchase / transfer orders and item receipts: see `netsuite_inbound` (create, close, receive)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mienne_ops.sandbox import netsuite_dates as dates
from mienne_ops.sandbox import netsuite_inbound as inbound
from mienne_ops.sandbox import netsuite_records as records
from mienne_ops.sandbox import netsuite_refunds as refunds
from mienne_ops.sandbox import netsuite_store as store
from mienne_ops.sandbox import netsuite_suiteql as suiteql
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.faults import FaultBook
from mienne_ops.sandbox.netsuite_store import NsError
from mienne_ops.sandbox.world import World

ERROR_MEDIA_TYPE = "application/vnd.oracle.resource+json; type=error"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
INVALID_LOGIN = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)
DEFAULT_CONCURRENCY = 5
TIMESTAMP_TOLERANCE_SECONDS = 300
RECORD = "/services/rest/record/v1"


def error_response(
    status: int, code: str, detail: str, path: str | None = None, title: str | None = None
) -> Response:
    """NetSuite's problem-details error body."""
    item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    body = {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.{5 if status < 500 else 6}.1",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [item],
    }
    return Response(json.dumps(body), status_code=status, media_type=ERROR_MEDIA_TYPE)


def concurrency_response() -> Response:
    return error_response(
        429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked."
    )


class RequestHold:
    """Control-plane switch that keeps admitted requests in flight until released.

    A test holds the pool full on purpose instead of hoping slow requests overlap: while holding,
    every request that gets a slot waits here (still occupying it) until ``release``. Touched only
    on the server's event loop thread (the control routes run there too).
    """

    def __init__(self) -> None:
        self.held = 0
        self._released: asyncio.Event | None = None

    @property
    def holding(self) -> bool:
        return self._released is not None

    def hold(self) -> None:
        if self._released is None:
            self._released = asyncio.Event()

    def release(self) -> None:
        if self._released is not None:
            self._released.set()
            self._released = None

    async def wait(self) -> None:
        released = self._released
        if released is None:
            return
        self.held += 1
        try:
            await released.wait()
        finally:
            self.held -= 1


class ConcurrencyLimiter:
    """Outermost middleware: requests beyond the pool size are refused at once, never queued."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox
        self.in_flight = 0  # touched only on the event loop thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.sandbox.concurrency_limit:
            self.sandbox.refused += 1
            await concurrency_response()(scope, receive, send)
            return
        self._count(+1)
        done = False

        async def send_and_free_the_slot(message: Message) -> None:
            # The slot is free before the last byte goes out, so a caller that has read its whole
            # answer never finds its own finished request still counted against the pool.
            nonlocal done
            if message["type"] == "http.response.body" and not message.get("more_body") and not done:
                done = True
                self._count(-1)
            await send(message)

        try:
            await self.sandbox.request_hold.wait()
            await self.app(scope, receive, send_and_free_the_slot)
        finally:
            if not done:
                self._count(-1)

    def _count(self, step: int) -> None:
        self.in_flight += step
        self.sandbox.in_flight = self.in_flight
        self.sandbox.max_in_flight = max(self.sandbox.max_in_flight, self.in_flight)


class TbaVerifier:
    """Checks OAuth 1.0a TBA headers exactly (oauthlib's HMAC-SHA256), plus nonce and clock rules."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials
        self.revoked = False
        self.spurious_every = 0
        self._verified = 0
        self._nonces: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def verify(self, method: str, url: str, header: str) -> None:
        if self.revoked or not header.lower().startswith("oauth "):
            raise NsError(401, "INVALID_LOGIN", INVALID_LOGIN)
        try:
            params = oauth_signature.collect_parameters(
                uri_query=urlsplit(url).query,
                headers={"Authorization": header},
                exclude_oauth_signature=False,
                with_realm=True,
            )
        except (ValueError, IndexError):
            raise NsError(401, "INVALID_LOGIN", INVALID_LOGIN) from None
        oauth = dict(params)
        self._check_fields(oauth)
        request = OAuthRequest(url, method, None, {"Authorization": header})
        request.params = [(k, v) for k, v in params if k not in ("oauth_signature", "realm")]
        request.signature = oauth["oauth_signature"]
        secrets = self.credentials
        if not oauth_signature.verify_hmac_sha256(
            request, secrets["consumer_secret"], secrets["token_secret"]
        ):
            raise NsError(401, "INVALID_LOGIN", INVALID_LOGIN)
        self._use_nonce(oauth["oauth_nonce"], oauth["oauth_timestamp"])
        with self._lock:
            self._verified += 1
            spurious = self.spurious_every and self._verified % self.spurious_every == 0
        if spurious:
            raise NsError(401, "INVALID_LOGIN", INVALID_LOGIN)

    def reset(self) -> None:
        with self._lock:
            self.revoked, self.spurious_every, self._verified = False, 0, 0

    def configure(self, revoked: bool | None, spurious_every: int | None) -> None:
        with self._lock:
            if revoked is not None:
                self.revoked = revoked
            if spurious_every is not None:
                self.spurious_every, self._verified = spurious_every, 0

    def _check_fields(self, oauth: dict[str, str]) -> None:
        expected = self.credentials
        timestamp = oauth.get("oauth_timestamp", "")
        checks = (
            oauth.get("oauth_signature_method") == "HMAC-SHA256",
            oauth.get("oauth_consumer_key") == expected["consumer_key"],
            oauth.get("oauth_token") == expected["token_id"],
            oauth.get("realm", "").upper() == expected["account_id"].upper(),
            oauth.get("oauth_version", "1.0") == "1.0",
            len(oauth.get("oauth_nonce", "")) >= 6,
            "oauth_signature" in oauth,
            timestamp.isdigit() and abs(time.time() - int(timestamp)) <= TIMESTAMP_TOLERANCE_SECONDS,
        )
        if not all(checks):
            raise NsError(401, "INVALID_LOGIN", INVALID_LOGIN)

    def _use_nonce(self, nonce: str, timestamp: str) -> None:
        now = time.time()
        with self._lock:
            if (nonce, timestamp) in self._nonces:
                raise NsError(401, "INVALID_LOGIN", INVALID_LOGIN)
            self._nonces[(nonce, timestamp)] = now
            if len(self._nonces) > 10_000:
                horizon = now - 2 * TIMESTAMP_TOLERANCE_SECONDS
                self._nonces = {key: seen for key, seen in self._nonces.items() if seen > horizon}


def _signed_url(request: Request) -> str:
    """The URL the client signed: its scheme and Host, the full path (mount prefix included), query."""
    scope = request.scope
    root, path = scope.get("root_path", ""), scope["path"]
    # Starlette keeps the full path in `path` under a Mount; older servers strip the prefix.
    if root and not path.startswith(root):
        path = root + path
    host = request.headers.get("host") or str(request.url.netloc)
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")


def _service_root(url: str) -> str:
    """``scheme://host[/netsuite]`` — everything before ``/services/rest``."""
    return url.split("/services/rest/", 1)[0]


class Sandbox(SystemSandbox):
    name = "netsuite"

    def __init__(self, world: World, faults: FaultBook) -> None:
        super().__init__(world, faults)
        self.concurrency_limit = DEFAULT_CONCURRENCY
        self.request_hold = RequestHold()
        self.in_flight = 0  # mirrored by `ConcurrencyLimiter` for the control route
        self.refused = 0  # 429 CONCURRENCY_LIMIT_EXCEEDED answers since the last reset
        self.max_in_flight = 0  # the peak of admitted requests since the last reset
        self.verifier = TbaVerifier(NETSUITE)
        self.preferences = dates.Preferences()
        self.account = store.AccountSettings()
        with world.tx() as conn:
            store.create_schema(conn)
            inbound.create_schema(conn)
            suiteql.register_functions(conn, self.preferences)

    # -- SystemSandbox ----------------------------------------------------------------------------
    def wrap(self, app: ASGIApp) -> ASGIApp:
        return ConcurrencyLimiter(app, self)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return concurrency_response()
        if status == 503:
            return error_response(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
        return error_response(status, "UNEXPECTED_ERROR", "An unexpected error occurred.")

    def credentials(self) -> dict[str, Any]:
        return dict(NETSUITE)

    def reset(self, catalog: Catalog) -> None:
        self.concurrency_limit = DEFAULT_CONCURRENCY
        self.request_hold.release()
        self.refused = 0
        self.max_in_flight = 0
        self.preferences.date_format = dates.DEFAULT_DATE_FORMAT
        self.verifier.reset()
        self.account = store.AccountSettings()
        with self.world.tx() as conn:
            store.clear(conn)
            self.world.clear_system("netsuite")
            store.seed(conn, catalog, _seed_stock)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/services/rest/query/v1/suiteql", self._api(self._suiteql), methods=["POST"]),
            Route(f"{RECORD}/{{rec}}", self._api(self._collection), methods=["GET", "POST"]),
            Route(
                f"{RECORD}/{{rec}}/{{ref}}/!transform/{{target}}",
                self._api(self._transform),
                methods=["POST"],
            ),
            Route(f"{RECORD}/{{rec}}/{{ref}}/{{sublist}}", self._api(self._sublist), methods=["GET"]),
            Route(
                f"{RECORD}/{{rec}}/{{ref}}",
                self._api(self._instance),
                methods=["GET", "PUT", "PATCH", "DELETE"],
            ),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/limits", self._set_limits, methods=["POST"]),
            Route("/preferences", self._preferences, methods=["GET", "POST"]),
            Route("/token", self._token, methods=["POST"]),
            Route("/account", self._account, methods=["GET", "POST"]),
            Route("/sales_orders/{id}/cancel", self._cancel, methods=["POST"]),
            Route("/inventory", self._set_inventory, methods=["POST"]),
            *inbound.control_routes(self),
        ]

    # -- request plumbing -------------------------------------------------------------------------
    def _api(self, handler: Callable[[Request, Any, records.Ctx], Response]) -> Callable:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()

            def work() -> Response:
                try:
                    url = _signed_url(request)
                    self.verifier.verify(request.method, url, request.headers.get("authorization", ""))
                    body = _parse_body(raw)
                    with self.world.tx() as conn:
                        return handler(request, body, self._ctx(conn, url, request))
                except NsError as error:
                    return error_response(error.status, error.code, error.detail, error.path)

            return await anyio.to_thread.run_sync(work)

        return endpoint

    def _ctx(self, conn: Any, url: str, request: Request) -> records.Ctx:
        return records.Ctx(
            conn=conn,
            now=self.world.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            next_id=self.world.next_id,
            record_root=f"{_service_root(url)}{RECORD}",
            name_validation=request.headers.get("x-netsuite-propertynamevalidation", "Warning"),
            account=self.account,
        )

    # -- SuiteQL ----------------------------------------------------------------------------------
    def _suiteql(self, request: Request, body: Any, ctx: records.Ctx) -> Response:
        if "transient" not in request.headers.get("prefer", "").lower():
            raise NsError(400, "INVALID_PARAMETER", "The 'Prefer: transient' header is required.", None)
        limit, offset = _paging(request)
        query = (body or {}).get("q") if isinstance(body, dict) else None
        if not query or not isinstance(query, str):
            raise NsError(400, "INVALID_CONTENT", "The request body must contain the query in 'q'.", "q")
        try:
            rows = suiteql.run(ctx.conn, query, self.world.now(), self.preferences)
        except suiteql.SuiteQLError as error:
            raise NsError(400, "INVALID_PARAMETER", str(error)[:300]) from None
        base = f"{_service_root(_signed_url(request))}/services/rest/query/v1/suiteql"
        return JSONResponse(_page(base, rows, limit, offset, lambda row: {"links": [], **row}))

    # -- records ----------------------------------------------------------------------------------
    def _collection(self, request: Request, body: Any, ctx: records.Ctx) -> Response:
        record_type = request.path_params["rec"]
        if request.method == "GET":
            return self._list(request, record_type, ctx)
        new_id = self._create(record_type, _object(body), ctx)
        return _created(ctx, record_type, new_id)

    def _create(
        self, record_type: str, body: dict[str, Any], ctx: records.Ctx, external_id: str | None = None
    ) -> int:
        if record_type == "salesOrder":
            return records.create_sales_order(ctx, body, external_id)
        if record_type == "customer":
            return records.write_customer(ctx, body, None, external_id)
        if record_type == "customerRefund":
            return refunds.create_customer_refund(ctx, body, external_id)
        if record_type in store.TRANSACTION_TYPES:
            raise NsError(400, "USER_ERROR", f"Create {record_type} records by transforming their source.")
        raise NsError(404, "NONEXISTENT_ID", f"Record type '{record_type}' does not exist.")

    def _instance(self, request: Request, body: Any, ctx: records.Ctx) -> Response:
        record_type, ref = request.path_params["rec"], request.path_params["ref"]
        method = request.method
        if method == "GET":
            return JSONResponse(self._read(request, record_type, ref, ctx))
        if method == "PUT":
            return self._upsert(request, record_type, ref, _object(body), ctx)
        if method == "PATCH":
            self._update(request, record_type, ref, _object(body), ctx)
            return Response(status_code=204)
        self._delete(record_type, ref, ctx)
        return Response(status_code=204)

    def _read(self, request: Request, record_type: str, ref: str, ctx: records.Ctx) -> dict[str, Any]:
        if record_type == "customer":
            return records.render_customer(ctx, records.load_customer(ctx.conn, ref))
        row = self._load(record_type, ref, ctx)
        expand = request.query_params.get("expandSubResources", "").lower() == "true"
        simple = request.query_params.get("simpleEnumFormat", "").lower() == "true"
        rendered = records.Renderer(ctx, expand, simple).transaction(row)
        fields = request.query_params.get("fields")
        if fields:
            wanted = set(fields.split(",")) | {"links", "id"}
            rendered = {k: v for k, v in rendered.items() if k in wanted}
        return rendered

    def _load(self, record_type: str, ref: str, ctx: records.Ctx) -> Any:
        if record_type not in store.TRANSACTION_TYPES:
            raise store.not_found(record_type, ref)
        return store.load_transaction(ctx.conn, record_type, ref)

    def _upsert(self, request: Request, record_type: str, ref: str, body: dict, ctx: records.Ctx) -> Response:
        if not ref.startswith("eid:") or len(ref) <= 4:
            raise NsError(400, "INVALID_PARAMETER", "PUT requires the eid:<externalId> form.", None)
        try:
            existing = self._read_row(record_type, ref, ctx)
        except NsError as error:
            if error.status != 404:
                raise
            existing = None
        if existing is None:
            new_id = self._create(record_type, body, ctx, external_id=ref[4:])
            return _created(ctx, record_type, new_id)
        self._update(request, record_type, ref, body, ctx)
        return _created(ctx, record_type, existing["id"])

    def _read_row(self, record_type: str, ref: str, ctx: records.Ctx) -> Any:
        if record_type == "customer":
            return records.load_customer(ctx.conn, ref)
        return self._load(record_type, ref, ctx)

    def _update(self, request: Request, record_type: str, ref: str, body: dict, ctx: records.Ctx) -> None:
        replace = set(filter(None, request.query_params.get("replace", "").split(",")))
        if record_type == "customer":
            records.write_customer(ctx, body, records.load_customer(ctx.conn, ref), None)
            return
        row = self._load(record_type, ref, ctx)
        if record_type == "salesOrder":
            records.update_sales_order(ctx, row, body, replace)
            return
        if record_type in inbound.RECORD_TYPES:
            inbound.update_order(ctx, row, body, replace)
            return
        records.update_simple_transaction(ctx, row, body, lambda tid: records.decrement_stock(ctx.conn, tid))

    def _delete(self, record_type: str, ref: str, ctx: records.Ctx) -> None:
        if record_type == "customer":
            row = records.load_customer(ctx.conn, ref)
            ctx.conn.execute("DELETE FROM ns_customer WHERE id = ?", (row["id"],))
            return
        row = self._load(record_type, ref, ctx)
        children = ctx.conn.execute(
            "SELECT 1 FROM ns_transaction WHERE createdfrom = ?", (row["id"],)
        ).fetchone()
        if children is not None:
            raise NsError(
                400, "USER_ERROR", "This record cannot be deleted because it has dependent records."
            )
        ctx.conn.execute("DELETE FROM ns_transactionline WHERE [transaction] = ?", (row["id"],))
        ctx.conn.execute("DELETE FROM ns_transaction WHERE id = ?", (row["id"],))

    def _sublist(self, request: Request, body: Any, ctx: records.Ctx) -> Response:
        record_type, ref = request.path_params["rec"], request.path_params["ref"]
        row = self._load(record_type, ref, ctx)
        return JSONResponse(records.Renderer(ctx).sublist(row, request.path_params["sublist"], force=True))

    def _list(self, request: Request, record_type: str, ctx: records.Ctx) -> Response:
        limit, offset = _paging(request)
        if record_type == "customer":
            rows = ctx.conn.execute("SELECT id FROM ns_customer ORDER BY id").fetchall()
        elif record_type in store.TRANSACTION_TYPES:
            rows = ctx.conn.execute(
                "SELECT id FROM ns_transaction WHERE rectype = ? ORDER BY id", (record_type,)
            ).fetchall()
        else:
            raise NsError(404, "NONEXISTENT_ID", f"Record type '{record_type}' does not exist.")
        base = f"{ctx.record_root}/{record_type}"
        return JSONResponse(
            _page(
                base,
                [row["id"] for row in rows],
                limit,
                offset,
                lambda rid: {"links": [{"rel": "self", "href": ctx.href(record_type, rid)}], "id": str(rid)},
            )
        )

    def _transform(self, request: Request, body: Any, ctx: records.Ctx) -> Response:
        params = request.path_params
        if params["rec"] in inbound.RECEIPT_SOURCES:
            new_id = inbound.receive(ctx, params["rec"], params["ref"], params["target"], _object(body))
            return _created(ctx, params["target"], new_id)
        new_id = records.transform(ctx, params["rec"], params["ref"], params["target"], _object(body))
        return _created(ctx, params["target"], new_id)

    # -- control plane ----------------------------------------------------------------------------
    async def _set_limits(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        if "concurrency" in body:
            self.concurrency_limit = max(1, int(body["concurrency"]))
        if "hold" in body:
            if not isinstance(body["hold"], bool):
                raise ValueError("hold must be true or false")  # a 400 from the control plane's guard
            if body["hold"]:
                self.request_hold.hold()
            else:
                self.request_hold.release()
        return JSONResponse(
            {
                "concurrency": self.concurrency_limit,
                "hold": self.request_hold.holding,
                "held": self.request_hold.held,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "refused": self.refused,
            }
        )

    async def _preferences(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                if not isinstance(body, dict) or set(body) - {"date_format"}:
                    raise ValueError("the body takes only 'date_format'")
                if "date_format" in body:
                    self.preferences.set_date_format(body["date_format"])
            except ValueError as error:  # DateError and bad JSON included
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"date_format": self.preferences.date_format})

    async def _account(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.account.update(json.loads(await request.body() or b"{}"))
            except ValueError as error:  # bad JSON included
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(self.account.describe())

    async def _token(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        every = body.get("spurious_401_every", 0) if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not body
            or set(body) - {"revoked", "spurious_401_every"}
            or not isinstance(body.get("revoked", False), bool)
            or not isinstance(every, int)
            or isinstance(every, bool)
            or every < 0
        ):
            message = 'the body takes {"revoked": true|false} and/or {"spurious_401_every": N >= 0}'
            return JSONResponse({"error": message}, status_code=400)
        self.verifier.configure(body.get("revoked"), body.get("spurious_401_every"))
        return JSONResponse(
            {"revoked": self.verifier.revoked, "spurious_401_every": self.verifier.spurious_every}
        )

    def _cancel(self, request: Request) -> Response:
        with self.world.tx() as conn:
            ctx = records.Ctx(conn, self.world.now().strftime("%Y-%m-%dT%H:%M:%SZ"), self.world.next_id, "")
            try:
                letter = records.cancel_sales_order(ctx, int(request.path_params["id"]))
            except (NsError, ValueError) as error:
                return JSONResponse({"error": str(error)}, status_code=404)
        return JSONResponse({"id": request.path_params["id"], "status": letter})

    async def _set_inventory(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        with self.world.tx() as conn:
            conn.execute(
                "INSERT INTO ns_aggregateitemlocation (item, location, quantityonhand, quantityavailable) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(item, location) DO UPDATE SET "
                "quantityonhand = excluded.quantityonhand, quantityavailable = excluded.quantityavailable",
                (
                    int(body["item"]),
                    int(body["location"]),
                    body["quantityonhand"],
                    body.get("quantityavailable", body["quantityonhand"]),
                ),
            )
        return JSONResponse({"ok": True})

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        with self.world.tx() as conn:
            transactions = conn.execute("SELECT * FROM ns_transaction ORDER BY id").fetchall()
            customers = conn.execute("SELECT * FROM ns_customer ORDER BY id").fetchall()
            return {
                "sales_orders": [_state_order(conn, t) for t in transactions if t["type"] == "SalesOrd"],
                "item_fulfillments": [_state_child(conn, t) for t in transactions if t["type"] == "ItemShip"],
                "cash_sales": [_state_child(conn, t) for t in transactions if t["type"] == "CashSale"],
                "invoices": [_state_child(conn, t) for t in transactions if t["type"] == "CustInvc"],
                "customers": [
                    {
                        "id": str(c["id"]),
                        "externalId": c["externalid"],
                        "email": c["email"],
                        "firstName": c["firstname"],
                        "lastName": c["lastname"],
                    }
                    for c in customers
                ],
                "concurrency_limit": self.concurrency_limit,
                **inbound.state(conn),
                **refunds.state(conn),
            }


# -- helpers --------------------------------------------------------------------------------------


def _seed_stock(item_id: int, location_id: int) -> int:
    """Deterministic seed stock: most SKUs well stocked, every 17th out of stock at one warehouse."""
    if item_id % 17 == 0 and location_id == 2:
        return 0
    return 40 + (item_id * 7 + location_id * 13) % 160


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise NsError(400, "INVALID_CONTENT", "The request body is not valid JSON.") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise NsError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    return body


def _paging(request: Request) -> tuple[int, int]:
    try:
        limit = int(request.query_params.get("limit", 1000))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        raise NsError(400, "INVALID_PARAMETER", "limit and offset must be integers.") from None
    if not 1 <= limit <= 1000:
        raise NsError(400, "INVALID_PARAMETER", "Invalid value for 'limit': must be between 1 and 1000.")
    if offset < 0 or offset % limit:
        raise NsError(400, "INVALID_PARAMETER", "Invalid value for 'offset': must be a multiple of limit.")
    return limit, offset


def _page(
    base: str, rows: list[Any], limit: int, offset: int, render: Callable[[Any], dict]
) -> dict[str, Any]:
    total = len(rows)
    window = rows[offset : offset + limit]
    last = max(0, ((total - 1) // limit) * limit) if total else 0

    def link(rel: str, at: int) -> dict[str, str]:
        return {"rel": rel, "href": f"{base}?limit={limit}&offset={at}"}

    links = []
    if offset > 0:
        links.append(link("previous", max(0, offset - limit)))
    links.append(link("first", 0))
    has_more = offset + limit < total
    if has_more:
        links.append(link("next", offset + limit))
    links += [link("last", last), link("self", offset)]
    return {
        "links": links,
        "count": len(window),
        "hasMore": has_more,
        "offset": offset,
        "totalResults": total,
        "items": [render(row) for row in window],
    }


def _created(ctx: records.Ctx, record_type: str, new_id: int) -> Response:
    return Response(status_code=204, headers={"Location": ctx.href(record_type, new_id)})


def _state_lines(conn: Any, transaction_id: int, kit_members: bool = False) -> list[dict[str, Any]]:
    """The item lines (or, with ``kit_members``, the hidden kit member lines) of a transaction."""
    result = []
    if kit_members:
        lines = conn.execute(
            "SELECT * FROM ns_transactionline WHERE [transaction] = ? AND kitmemberof IS NOT NULL "
            "ORDER BY linesequencenumber",
            (transaction_id,),
        ).fetchall()
    else:
        lines = store.item_lines(conn, transaction_id)
    for line in lines:
        sku = conn.execute("SELECT itemid FROM ns_item WHERE id = ?", (line["item"],)).fetchone()
        result.append(
            {
                "line": line["id"],
                "item": str(line["item"]),
                "sku": sku["itemid"] if sku else None,
                "quantity": store.number(abs(store.to_decimal(line["quantity"], "quantity"))),
                "quantityFulfilled": store.number(line["quantityshiprecv"]),
                "quantityBilled": store.number(line["quantitybilled"]),
                "rate": str(line["rate"]),
                "location": line["location"],
                "isClosed": line["isclosed"] == "T",
                "orderLine": line["orderline"],
                "custcol_shopify_line_id": line["custcol_shopify_line_id"],
                **({"kitMemberOf": line["kitmemberof"]} if kit_members else {}),
            }
        )
    return result


def _state_order(conn: Any, row: Any) -> dict[str, Any]:
    header = json.loads(row["record"])
    return {
        "id": str(row["id"]),
        "tranId": row["tranid"],
        "externalId": row["externalid"],
        "status": row["status"],
        "custbody_sent_to_3pl": row["custbody_sent_to_3pl"] == "T",
        "entity": str(row["entity"]) if row["entity"] is not None else None,
        "otherRefNum": row["otherrefnum"],
        "shipMethod": row["shipmethod"],
        "custom": {k: v for k, v in header.items() if k.startswith("custbody_")},
        "lines": _state_lines(conn, row["id"]),
        "kitMemberLines": _state_lines(conn, row["id"], kit_members=True),
    }


def _state_child(conn: Any, row: Any) -> dict[str, Any]:
    header = json.loads(row["record"])
    return {
        "id": str(row["id"]),
        "tranId": row["tranid"],
        "externalId": row["externalid"],
        "createdFrom": str(row["createdfrom"]),
        "status": row["status"],
        "lines": _state_lines(conn, row["id"]),
        "kitMemberLines": _state_lines(conn, row["id"], kit_members=True),
        "packages": header.get("package", []),
        "packageSublist": header.get("packageSublist"),
        "tracking": [p.get("packageTrackingNumber") for p in header.get("package", [])],
    }
