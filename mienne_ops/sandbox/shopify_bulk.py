"""Bulk query operations in the Shopify fake: ``bulkOperationRunQuery``, status, cancel, the JSONL file.

Vendor facts (``shared/docs/api/shopify.md`` §6.2; shopify.dev "Perform bulk operations with the
GraphQL Admin API", the 2026-04 reference of ``bulkOperationRunQuery``, ``BulkOperation``,
``BulkOperationUserErrorCode``, ``currentBulkOperation``; changelog 2021-10 for the webhook):

- ``bulkOperationRunQuery(query:, groupObjects: false)`` creates an operation (``CREATED``) that runs
  in the background (``RUNNING`` → ``COMPLETED`` | ``FAILED``; ``bulkOperationCancel`` →
  ``CANCELING`` → ``CANCELED``; a result older than 7 days is ``EXPIRED``). Status through
  ``bulkOperation(id:)`` and ``currentBulkOperation(type:)`` (the app's most recent one).
- The query must hold at least one connection, at most 5 connections, nested at most 2 levels deep;
  the top-level ``node``/``nodes`` fields can't be used; ``first``/``last`` and cursors are ignored
  (every node is read). Bulk queries are not priced against the 1,000-point single-query limit: only
  the mutation itself is (10 points).
- The result is a JSONL file at ``url`` (no auth, a signed URL that expires after 7 days): one line
  per connection node; a node of a nested connection carries ``__parentId`` (its parent node's id)
  and is not embedded in its parent's line. Children always come after their parent, but only with
  ``groupObjects: true`` directly after it: without grouping Shopify gives no order, so the fake
  writes every parent first and the children after them (a reader must join on ``__parentId``).
- ``objectCount`` counts every line, ``rootObjectCount`` the top-level ones; ``fileSize`` in bytes.
- Concurrency: the 2026-04 reference says one bulk query per app and shop at a time
  (``OPERATION_IN_PROGRESS``), the guide says five from 2026-01 on. The fake plays both
  (``concurrent_queries``, default 1, the stricter); over five it answers ``LIMIT_REACHED``.
- ``bulk_operations/finish`` fires when an operation completes, fails or is cancelled.

Sandbox choices (no timing in tests): an operation moves one step each time its status is read
(``CREATED`` → ``RUNNING`` on the first read, the query runs and completes on the second), so a
poller sees every state and never waits on a clock. Assumptions: the wording of the userErrors, that a
nested connection's parent must select ``id`` (the fake could not write ``__parentId`` otherwise),
that a query matching nothing completes with no ``url`` (and no ``fileSize``),
the ``bulk_operations/finish`` payload keys (snake case, as Shopify's REST-shaped webhooks are).

Control plane, under ``/_sandbox/shopify``: ``GET|POST /bulk_operations`` reads or sets
``{"concurrent_queries": 1, "hold": false, "fail_next": null}`` (``hold`` keeps operations RUNNING
until released; ``fail_next: "TIMEOUT"`` fails the next run with that ``errorCode`` and half of its
lines at ``partialDataUrl``); the answer lists the operations.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    execute,
    get_named_type,
    parse,
    validate,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.shopify_graphql import (
    UNBOUNDED_PAGES,
    admin_schema,
    fragments_of,
    gid,
    parse_gid,
    parse_time,
    resolve_field,
)
from mienne_ops.sandbox.shopify_orders import shop_time

SYSTEM = "shopify"
KIND = "bulk_operation"
RESULT_KIND = "bulk_result"
MAX_CONNECTIONS = 5
MAX_CONNECTION_DEPTH = 2
MAX_CONCURRENT_QUERIES = 5  # the guide's figure from 2026-01 on
RESULT_LIFETIME = timedelta(days=7)
IN_PROGRESS = frozenset({"CREATED", "RUNNING", "CANCELING"})
PAGING_ARGS = frozenset({"first", "last", "after", "before"})
ERROR_CODES = frozenset({"ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT"})
RESULT_PATH = "/bulk-operation-results/{op_id}.jsonl"


@dataclass
class BulkSettings:
    """The control plane's knobs (reset with the world)."""

    concurrent_queries: int = 1
    hold: bool = False
    fail_next: str | None = None


def is_connection(graphql_type: Any) -> bool:
    named = get_named_type(graphql_type)
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection")


# -- the rules a bulk query document must follow -------------------------------------------------
@dataclass(frozen=True)
class _Connection:
    name: str
    depth: int
    parent_selects_id: bool


def bulk_query_problem(schema: GraphQLSchema, query: str) -> str | None:
    """Why Shopify would refuse ``query`` as a bulk query (None when it is acceptable)."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return f"Invalid bulk query: {error.message}"
    errors = validate(schema, document)
    if errors:
        return "Invalid bulk query: " + "; ".join(e.message for e in errors)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return "Invalid bulk query: a bulk query must be exactly one query operation."
    top = [s for s in operations[0].selection_set.selections if isinstance(s, FieldNode)]
    if any(f.name.value in ("node", "nodes") for f in top):
        return "Invalid bulk query: the top-level `node` and `nodes` fields can't be used."
    found: list[_Connection] = []
    _collect_connections(
        schema, schema.query_type, operations[0].selection_set, fragments_of(document), 0, True, found
    )
    if not found:
        return "Invalid bulk query: a bulk query must contain at least one connection."
    if len(found) > MAX_CONNECTIONS:
        return f"Invalid bulk query: bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
    deep = next((c for c in found if c.depth > MAX_CONNECTION_DEPTH), None)
    if deep:
        return (
            f"Invalid bulk query: connection '{deep.name}' is nested {deep.depth} levels deep; "
            f"bulk queries allow at most {MAX_CONNECTION_DEPTH}."
        )
    orphan = next((c for c in found if c.depth > 1 and not c.parent_selects_id), None)
    if orphan:
        return (
            "Invalid bulk query: the parent 'node' field for a nested connection must select the 'id' "
            f"field. Connection field: '{orphan.name}'."
        )
    return None


def _collect_connections(schema, parent, selection_set: SelectionSetNode, fragments, depth, has_id, found):
    """Every connection field under ``selection_set`` with its nesting depth (fragments followed)."""
    for selection, owner in _fields(schema, parent, selection_set, fragments):
        definition = getattr(owner, "fields", {}).get(selection.name.value)
        if definition is None or selection.selection_set is None:
            continue
        named = get_named_type(definition.type)
        if is_connection(definition.type):
            found.append(_Connection(selection.name.value, depth + 1, has_id))
            _collect_connection_nodes(schema, named, selection.selection_set, fragments, depth + 1, found)
        else:
            _collect_connections(schema, named, selection.selection_set, fragments, depth, has_id, found)


def _collect_connection_nodes(schema, connection_type, selection_set, fragments, depth, found):
    """Inside a connection: its ``nodes`` or ``edges { node }`` are the objects that become lines."""
    for selection, _owner in _fields(schema, connection_type, selection_set, fragments):
        if selection.selection_set is None:
            continue
        if selection.name.value == "nodes":
            node_type = get_named_type(connection_type.fields["nodes"].type)
            _collect_node(schema, node_type, selection.selection_set, fragments, depth, found)
        elif selection.name.value == "edges":
            edge_type = get_named_type(connection_type.fields["edges"].type)
            for inner, _ in _fields(schema, edge_type, selection.selection_set, fragments):
                if inner.name.value == "node" and inner.selection_set is not None:
                    node_type = get_named_type(edge_type.fields["node"].type)
                    _collect_node(schema, node_type, inner.selection_set, fragments, depth, found)


def _collect_node(schema, node_type, selection_set, fragments, depth, found):
    selects_id = any(
        f.name.value == "id" and f.alias is None
        for f, _ in _fields(schema, node_type, selection_set, fragments)
    )
    _collect_connections(schema, node_type, selection_set, fragments, depth, selects_id, found)


def _fields(schema, parent, selection_set: SelectionSetNode, fragments) -> Iterator[tuple[FieldNode, Any]]:
    """The field nodes of a selection set with the type that owns them, fragments expanded."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection, parent
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                continue
            condition, inner = fragment.type_condition, fragment.selection_set
        elif isinstance(selection, InlineFragmentNode):
            condition, inner = selection.type_condition, selection.selection_set
        else:
            continue
        target = schema.get_type(condition.name.value) if condition else parent
        yield from _fields(schema, target or parent, inner, fragments)


# -- running the query and writing JSONL ---------------------------------------------------------
class _ConnectionPaths:
    """The fake's field resolver for a bulk query: paging arguments dropped (every node is read),
    and the response path of every connection noted (their nodes become JSONL lines)."""

    def __init__(self) -> None:
        self.paths: set[tuple[str | int, ...]] = set()

    def __call__(self, source: Any, info, **args: Any) -> Any:
        if _is_connection_type(info.return_type):
            self.paths.add(tuple(info.path.as_list()))
            args = {k: v for k, v in args.items() if k not in PAGING_ARGS}
        return resolve_field(source, info, **args)


@lru_cache(maxsize=4096)
def _is_connection_type(graphql_type: Any) -> bool:
    return is_connection(graphql_type)


@dataclass
class _Line:
    row: dict[str, Any]
    children: list[_Line]


def run_bulk_query(query: str, root: Any, grouped: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Execute a (checked) bulk query over the fake's data: (JSONL rows in file order, root count)."""
    noted = _ConnectionPaths()
    token = UNBOUNDED_PAGES.set(True)
    try:
        result = execute(admin_schema(), parse(query), root_value=root, field_resolver=noted)
    finally:
        UNBOUNDED_PAGES.reset(token)
    assert not hasattr(result, "__await__")  # no async resolvers
    if result.errors:  # type: ignore[union-attr]
        raise RuntimeError("; ".join(e.message for e in result.errors))  # type: ignore[union-attr]
    roots: list[_Line] = []
    _split(result.data or {}, (), noted.paths, roots)  # type: ignore[union-attr]
    return roots_to_rows(roots, grouped), len(roots)


def _split(value: Any, path: tuple, connections: set, out: list[_Line]) -> Any:
    """Copy ``value`` without its connections; each connection node becomes a `_Line` in ``out``.

    The lines of connections nested in a node go to that node's ``children`` with ``__parentId``.
    """
    if isinstance(value, list):
        return [_split(v, (*path, i), connections, out) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, inner in value.items():
        inner_path = (*path, key)
        if inner_path in connections:
            for node_path, node in _connection_nodes(inner, inner_path):
                line = _Line({}, [])
                line.row = _split(node, node_path, connections, line.children)
                for child in line.children:
                    child.row["__parentId"] = line.row.get("id")
                out.append(line)
        else:
            kept[key] = _split(inner, inner_path, connections, out)
    return kept


def _connection_nodes(connection: dict | None, path: tuple) -> list[tuple[tuple, dict]]:
    if not connection:
        return []
    if connection.get("nodes") is not None:
        return [((*path, "nodes", i), n) for i, n in enumerate(connection["nodes"]) if n is not None]
    return [
        ((*path, "edges", i, "node"), edge["node"])
        for i, edge in enumerate(connection.get("edges") or [])
        if edge and edge.get("node") is not None
    ]


def roots_to_rows(roots: list[_Line], grouped: bool = False) -> list[dict[str, Any]]:
    """File order: with grouping each parent's children right after it, else parents before children."""
    rows: list[dict[str, Any]] = []
    if grouped:

        def depth_first(line: _Line) -> None:
            rows.append(line.row)
            for child in line.children:
                depth_first(child)

        for line in roots:
            depth_first(line)
        return rows
    level = roots
    while level:
        rows.extend(line.row for line in level)
        level = [child for line in level for child in line.children]
    return rows


# -- the operations ------------------------------------------------------------------------------
def _user_error(message: str, code: str, field: list[str] | None = None) -> dict[str, Any]:
    return {"field": field, "message": message, "code": code}


class BulkOperations:
    """Storage, lifecycle and presentation of the fake's bulk operations."""

    def __init__(self, world, new_root: Callable[[], Any], emit: Callable[[str, dict], None]) -> None:
        self.world = world
        self.new_root = new_root  # a fresh resolver root for running a bulk query
        self.emit = emit
        self.settings = BulkSettings()

    def reset(self) -> None:
        self.settings = BulkSettings()

    def routes(self) -> list[BaseRoute]:
        return [Route(RESULT_PATH.replace("{op_id}", "{op_id:int}"), self._result_route, methods=["GET"])]

    def control_routes(self) -> list[BaseRoute]:
        return [Route("/bulk_operations", self._control_route, methods=["GET", "POST"])]

    def all(self) -> list[dict[str, Any]]:
        return sorted(self.world.list(SYSTEM, KIND), key=lambda op: op["id"])

    # -- lifecycle ------------------------------------------------------------------------------
    def create(self, query: str, group_objects: bool) -> tuple[dict | None, list[dict]]:
        """A new operation, or the userErrors Shopify answers instead."""
        problem = bulk_query_problem(admin_schema(), query)
        if problem:
            return None, [_user_error(problem, "INVALID", ["query"])]
        with self.world.tx():
            running = [op for op in self.all() if op["type"] == "QUERY" and op["status"] in IN_PROGRESS]
            if len(running) >= self.settings.concurrent_queries:
                return None, [self._refusal(running[-1])]
            op_id = self.world.next_id(f"{SYSTEM}:bulk_operation", 4_100_000_000_001)
            op = {
                "id": op_id,
                "type": "QUERY",
                "status": "CREATED",
                "query": query,
                "group_objects": bool(group_objects),
                "error_code": None,
                "object_count": 0,
                "root_object_count": 0,
                "file_size": None,
                "partial": False,
                "created_at": shop_time(self.world.now()),
                "completed_at": None,
            }
            self.world.put(SYSTEM, KIND, op_id, op)
        return op, []

    def _refusal(self, running: dict[str, Any]) -> dict[str, Any]:
        if self.settings.concurrent_queries == 1:
            message = (
                "A bulk query operation for this app and shop is already in progress: "
                f"{gid('BulkOperation', running['id'])}."
            )
            return _user_error(message, "OPERATION_IN_PROGRESS")
        return _user_error("Bulk operations limit reached. Please try again later.", "LIMIT_REACHED")

    def get(self, op_gid: str) -> dict | None:
        number = parse_gid(op_gid, "BulkOperation")
        return self.world.get(SYSTEM, KIND, number) if number else None

    def current(self, op_type: str = "QUERY") -> dict | None:
        ops = [op for op in self.all() if op["type"] == op_type]
        return ops[-1] if ops else None

    def advance(self, op: dict[str, Any]) -> dict[str, Any]:
        """One step of the operation's life, taken when its status is read (see the module doc)."""
        with self.world.tx():
            op = self.world.get(SYSTEM, KIND, op["id"]) or op
            status = op["status"]
            if status == "CREATED":
                op["status"] = "RUNNING"
            elif status == "RUNNING" and not self.settings.hold:
                self._run(op)
            elif status == "CANCELING":
                op["status"], op["completed_at"] = "CANCELED", None
                self._finished(op)
            elif status == "COMPLETED" and self._expired(op):
                op["status"] = "EXPIRED"
            else:
                return op
            self.world.put(SYSTEM, KIND, op["id"], op)
        return op

    def cancel(self, op_gid: str) -> tuple[dict | None, list[dict]]:
        op = self.get(op_gid)
        if op is None:
            return None, [{"field": ["id"], "message": "Bulk operation does not exist"}]
        if op["status"] not in ("CREATED", "RUNNING"):
            message = f"A bulk operation cannot be canceled when it is {op['status'].lower()}"
            return op, [{"field": None, "message": message}]
        op["status"] = "CANCELING"
        self.world.put(SYSTEM, KIND, op["id"], op)
        return op, []

    def _run(self, op: dict[str, Any]) -> None:
        failure: str | None
        try:
            rows, roots = run_bulk_query(op["query"], self.new_root(), op["group_objects"])
        except (GraphQLError, RuntimeError):
            rows, roots, failure = [], 0, "INTERNAL_SERVER_ERROR"
        else:
            failure = self.settings.fail_next
            self.settings.fail_next = None
        if failure:
            rows = rows[: len(rows) // 2]
        body = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        self.world.put(SYSTEM, RESULT_KIND, op["id"], {"jsonl": body})
        op.update(
            status="FAILED" if failure else "COMPLETED",
            error_code=failure,
            partial=bool(failure and rows),
            object_count=len(rows),
            root_object_count=sum(1 for r in rows if "__parentId" not in r) if failure else roots,
            file_size=len(body.encode()) if rows and not failure else None,
            completed_at=shop_time(self.world.now()),
        )
        self._finished(op)

    def _finished(self, op: dict[str, Any]) -> None:
        self.emit(
            "bulk_operations/finish",
            {
                "admin_graphql_api_id": gid("BulkOperation", op["id"]),
                "completed_at": op["completed_at"],
                "created_at": op["created_at"],
                "error_code": op["error_code"].lower() if op["error_code"] else None,
                "status": op["status"].lower(),
                "type": op["type"].lower(),
            },
        )

    def _expired(self, op: dict[str, Any]) -> bool:
        finished = parse_time(op["completed_at"] or op["created_at"])
        return finished is not None and self.world.now() - finished > RESULT_LIFETIME

    # -- presentation ---------------------------------------------------------------------------
    def node(self, op: dict[str, Any], origin: str) -> dict[str, Any]:
        """The ``BulkOperation`` object (``url`` signed for this server's origin)."""
        status = op["status"]
        return {
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", op["id"]),
            "type": op["type"],
            "status": status,
            "query": op["query"],
            "errorCode": op["error_code"],
            "objectCount": str(op["object_count"]),
            "rootObjectCount": str(op["root_object_count"]),
            "fileSize": str(op["file_size"]) if op["file_size"] is not None else None,
            # No file for a query that matched nothing (assumed; the client copes with either).
            "url": self._signed_url(op, origin) if status == "COMPLETED" and op["object_count"] else None,
            "partialDataUrl": self._signed_url(op, origin) if status == "FAILED" and op["partial"] else None,
            "createdAt": op["created_at"],
            "completedAt": op["completed_at"] if status in ("COMPLETED", "EXPIRED") else None,
        }

    def _signed_url(self, op: dict[str, Any], origin: str) -> str:
        finished = parse_time(op["completed_at"]) or self.world.now()
        expires = int((finished + RESULT_LIFETIME).timestamp())
        path = RESULT_PATH.format(op_id=op["id"])
        return (
            f"{origin.rstrip('/')}/shopify{path}?expires={expires}&signature={_signature(op['id'], expires)}"
        )

    # -- routes ---------------------------------------------------------------------------------
    async def _result_route(self, request: Request) -> Response:
        op_id = request.path_params["op_id"]
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            expires = 0
        given = request.query_params.get("signature", "")
        if not hmac.compare_digest(given, _signature(op_id, expires)):
            return _storage_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
        if self.world.now().timestamp() > expires:
            return _storage_error(400, "ExpiredToken", "The provided token has expired.")
        stored = await run_in_threadpool(self.world.get, SYSTEM, RESULT_KIND, op_id)
        if stored is None:
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        return Response(stored["jsonl"], media_type="application/jsonl")

    async def _control_route(self, request: Request) -> JSONResponse:
        if request.method == "POST":
            body = json.loads(await request.body() or b"{}")
            fail_next = body.get("fail_next", self.settings.fail_next)
            if fail_next is not None and fail_next not in ERROR_CODES:
                return JSONResponse({"errors": f"fail_next must be one of {sorted(ERROR_CODES)}"}, 400)
            concurrent = int(body.get("concurrent_queries", self.settings.concurrent_queries))
            if not 1 <= concurrent <= MAX_CONCURRENT_QUERIES:
                return JSONResponse(
                    {"errors": f"concurrent_queries must be 1..{MAX_CONCURRENT_QUERIES}"}, 400
                )
            self.settings = BulkSettings(concurrent, bool(body.get("hold", self.settings.hold)), fail_next)
        operations = await run_in_threadpool(self.all)
        return JSONResponse({**asdict(self.settings), "operations": operations})


def _signature(op_id: int, expires: int) -> str:
    secret = credentials.SHOPIFY["api_secret"].encode()
    return hmac.new(secret, f"{op_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def _storage_error(status: int, code: str, message: str) -> Response:
    """Errors in the shape of the cloud storage that serves Shopify's result files (XML)."""
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
    body += "</Error>"
    return Response(body, status_code=status, media_type="application/xml")


class BulkResolvers:
    """Root fields for bulk operations, mixed into the Shopify fake's `Resolvers`."""

    sandbox: Any
    origin: str = "http://127.0.0.1"

    # -- queries ----------------------------------------------------------------------------------
    def bulkOperation(self, info, id) -> dict | None:
        op = self.sandbox.bulk.get(id)
        return self._bulk_node(op) if op else None

    def currentBulkOperation(self, info, type="QUERY") -> dict | None:
        op = self.sandbox.bulk.current(type or "QUERY")
        return self._bulk_node(op) if op else None

    def _bulk_node(self, op: dict[str, Any]) -> dict[str, Any]:
        return self.sandbox.bulk.node(self.sandbox.bulk.advance(op), self.origin)

    # -- mutations --------------------------------------------------------------------------------
    def bulkOperationRunQuery(self, info, query, groupObjects=False) -> dict:
        op, errors = self.sandbox.bulk.create(query, groupObjects)
        return {
            "bulkOperation": self.sandbox.bulk.node(op, self.origin) if op else None,
            "userErrors": errors,
        }

    def bulkOperationCancel(self, info, id) -> dict:
        op, errors = self.sandbox.bulk.cancel(id)
        return {
            "bulkOperation": self.sandbox.bulk.node(op, self.origin) if op else None,
            "userErrors": errors,
        }
