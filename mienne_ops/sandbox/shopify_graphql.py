"""The GraphQL machinery of the Shopify fake: the real schema, query cost, connections and search.

Documents run through graphql-core against Shopify's real 2026-04 introspection, so a document the
real Admin API would reject is rejected here too. Resolvers stay small because one generic field
resolver reads dict keys and turns Python lists into Relay connections (`edges`, `nodes`,
`pageInfo`, `first`/`after`/`last`/`reverse`, at most 250 nodes). The cost model is a simplification
(our design choice, see `requested_cost`): the requested cost is priced from the document, the actual
cost (`ActualCost`) from what execution returned; the leaky bucket mirrors Shopify's `throttleStatus`.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import shlex
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_client_schema,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_leaf_type,
    value_from_ast_untyped,
)

MAX_PAGE_SIZE = 250
#: True while a bulk operation runs its query (`shopify_bulk`): every connection returns all of its
#: nodes, since bulk queries ignore ``first``/``last`` and cursors.
UNBOUNDED_PAGES: ContextVar[bool] = ContextVar("unbounded_pages", default=False)
MUTATION_COST = 10
CONNECTION_BASE_COST = 2

# Mutations that must carry @idempotent(key:) from 2026-04 on.
IDEMPOTENT_MUTATIONS = frozenset(
    {
        "inventoryAdjustQuantities",
        "inventorySetQuantities",
        "inventorySetOnHandQuantities",
        "inventoryShipmentReceive",
        "refundCreate",
    }
)


@lru_cache(maxsize=1)
def admin_schema() -> GraphQLSchema:
    """Shopify's real Admin API schema (2026-04), loaded once (~0.6 s)."""
    source = resources.files("mienne_ops.sandbox").joinpath("admin_2026-04.json.gz")
    with source.open("rb") as raw, gzip.open(raw, "rt") as text:
        return build_client_schema(json.load(text)["data"], assume_valid=True)


# -- ids ------------------------------------------------------------------------------------------
def gid(kind: str, number: int | str) -> str:
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value: str, kind: str | None = None) -> int | None:
    """The numeric id of ``gid://shopify/<kind>/<id>`` (None when malformed or of another kind)."""
    match = re.fullmatch(r"gid://shopify/(\w+)/(\d+)(\?.*)?", value or "")
    if not match or (kind and match.group(1) != kind):
        return None
    return int(match.group(2))


# -- connections ----------------------------------------------------------------------------------
def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode_cursor(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as error:
        raise GraphQLError("Invalid cursor for current pagination sort.") from error


def page_size(args: dict[str, Any]) -> tuple[int | None, int | None]:
    if UNBOUNDED_PAGES.get():
        return sys.maxsize, None
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
            raise GraphQLError(f"The `{name}` argument must be between 0 and {MAX_PAGE_SIZE}.")
    return first, last


def connection(
    items: list[Any],
    args: dict[str, Any],
    *,
    key: Callable[[Any], Any] | None = None,
    present: Callable[[Any], Any] = lambda item: item,
    descending: bool = False,
) -> dict[str, Any]:
    """A Relay connection over ``items`` (already sorted; ``key`` gives each item's cursor key).

    Without ``key`` the cursor is the position in the list. ``after`` skips items whose key is not
    beyond the cursor's, so pages stay stable when earlier items change.
    """
    first, last = page_size(args)
    if key is None:
        if args.get("reverse"):
            items = list(reversed(items))
        keyed = list(enumerate(items))
    else:
        keyed = [(key(item), item) for item in items]
    after = args.get("after")
    if after is not None:
        raw_mark = decode_cursor(after)
        mark: Any = tuple(raw_mark) if isinstance(raw_mark, list) else raw_mark
        keyed = [(k, item) for k, item in keyed if (k < mark if descending else k > mark)]
    if first is not None:
        page, has_next = keyed[:first], len(keyed) > first
    else:
        page, has_next = keyed[-last:] if last else [], False
    return connection_page([(k, present(item)) for k, item in page], has_next, after is not None)


def connection_page(keyed_nodes: list[tuple[Any, Any]], has_next: bool, has_previous: bool) -> dict:
    """A Relay connection (edges, nodes, pageInfo) from (cursor key, node) pairs of one page."""
    edges = [{"cursor": encode_cursor(key), "node": node} for key, node in keyed_nodes]
    return {
        "edges": edges,
        "nodes": [node for _, node in keyed_nodes],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _is_connection(graphql_type: GraphQLType) -> bool:
    named = get_named_type(graphql_type)
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection")


def resolve_field(source: Any, info, **args: Any) -> Any:
    """Read a dict key (or call a resolver method) and shape lists as the schema expects."""
    name = info.field_name
    value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
    if callable(value):
        value = value(info, **args)
    if isinstance(value, list):
        nullable = get_nullable_type(info.return_type)
        if _is_connection(nullable):
            return connection(value, args)
        if isinstance(nullable, GraphQLList) and args.get("first") is not None:
            return value[: args["first"]]
    return value


# -- cost -----------------------------------------------------------------------------------------
def requested_cost(schema: GraphQLSchema, operation: OperationDefinitionNode, fragments, variables) -> int:
    """Simplified Shopify query cost (our design choice).

    Scalars and enums cost 0, objects 1, a connection ``2 + first`` plus the cost of one node's
    selection (additive, not multiplied per node, so one page of orders with their line items stays
    well inside the bucket), a mutation field ``10``.
    """
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    if operation.operation.value == "mutation":
        return MUTATION_COST * sum(1 for s in operation.selection_set.selections if isinstance(s, FieldNode))
    return _selection_cost(schema, root, operation.selection_set, fragments, variables)


def _selection_cost(schema, parent: Any, selection_set: SelectionSetNode, fragments, variables) -> int:
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += _field_cost(schema, parent, selection, fragments, variables)
        else:
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
            total += _selection_cost(schema, target or parent, inner, fragments, variables)
    return total


def _field_cost(schema, parent, node: FieldNode, fragments, variables) -> int:
    fields = getattr(parent, "fields", {})
    definition = fields.get(node.name.value)
    if definition is None or node.selection_set is None:
        return 0
    named = get_named_type(definition.type)
    inner = (
        _selection_cost(schema, named, node.selection_set, fragments, variables)
        if is_composite_type(named)
        else 0
    )
    arguments = {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments}
    size = arguments.get("first") or arguments.get("last")
    if _is_connection(definition.type) or (
        size and isinstance(get_nullable_type(definition.type), GraphQLList)
    ):
        return CONNECTION_BASE_COST + int(size or 0) + inner
    return 1 + inner


def fragments_of(document) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


Path = tuple[str | int, ...]


class ActualCost:
    """graphql-core middleware pricing what a query actually returned (Shopify's ``actualQueryCost``).

    The same simplified rules as `requested_cost`, applied to the executed result at every depth:
    an object returned costs 1 (a null one 0), scalars 0, a connection ``2 + nodes returned`` plus
    its selection, a list one element's selection (the dearest element returned). Only fields that
    ran are priced, so type conditions that did not match cost nothing. Never above the requested
    cost: every returned count is at most its ``first``/``last``.
    """

    def __init__(self) -> None:
        self._fields: dict[Path, tuple[str, int]] = {}

    def resolve(self, next_: Callable[..., Any], root: Any, info, **args: Any) -> Any:
        value = next_(root, info, **args)
        if value is not None and not is_leaf_type(get_named_type(info.return_type)):
            self._fields[tuple(info.path.as_list())] = _shape(info.return_type, args, value)
        return value

    def total(self) -> int:
        children: dict[Path, list[Path]] = defaultdict(list)
        for path in self._fields:
            children[path[:-1]].append(path)

        def selection(container: Path) -> int:
            return sum(field(path) for path in children.get(container, ()))

        def field(path: Path) -> int:
            kind, count = self._fields[path]
            if kind == "object":
                return 1 + selection(path)
            if kind == "connection":
                return CONNECTION_BASE_COST + count + selection(path)
            dearest = max((selection((*path, index)) for index in range(count)), default=0)
            return (CONNECTION_BASE_COST + count if kind == "sized list" else 1) + dearest

        return selection(())


def _shape(return_type: GraphQLOutputType, args: dict[str, Any], value: Any) -> tuple[str, int]:
    """How `ActualCost` prices one resolved field: its kind and how many nodes it returned."""
    nullable = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if _is_connection(nullable):
        nodes = value.get("nodes", value.get("edges", [])) if isinstance(value, dict) else []
        return "connection", len(nodes or [])
    if isinstance(nullable, GraphQLList):
        # Like `_field_cost`: a list with `first`/`last` is priced as a connection of that size.
        sized = bool(args.get("first") or args.get("last"))
        return ("sized list" if sized else "list"), len(value) if hasattr(value, "__len__") else 0
    return "object", 0


# -- leaky bucket ---------------------------------------------------------------------------------
class CostBucket:
    """Shopify's GraphQL leaky bucket: ``maximumAvailable`` points restored at ``restoreRate``/s."""

    def __init__(self, maximum: float = 2000.0, restore_rate: float = 100.0) -> None:
        self._lock = threading.Lock()
        self.configure(maximum, restore_rate)

    def configure(self, maximum: float, restore_rate: float) -> None:
        with self._lock:
            self.maximum = float(maximum)
            self.restore_rate = float(restore_rate)
            self.available = float(maximum)
            self._at = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self._at) * self.restore_rate)
        self._at = now

    def take(self, cost: int) -> bool:
        """Spend ``cost`` points if available (False means THROTTLED)."""
        with self._lock:
            self._refill()
            if cost > self.available:
                return False
            self.available -= cost
            return True

    def refund(self, points: int) -> None:
        with self._lock:
            self._refill()
            self.available = min(self.maximum, self.available + points)

    def status(self) -> dict[str, float]:
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate,
            }


# -- search syntax --------------------------------------------------------------------------------
_COMPARISON = re.compile(r"^(?P<field>[a-z_]+):(?P<op>>=|<=|>|<)?(?P<value>.*)$")


def parse_search(query: str | None) -> list[tuple[bool, str, str, str]]:
    """Shopify search syntax -> [(negated, field, operator, value)], terms joined by AND.

    Supports ``field:value``, ``field:>=value`` (and ``>``, ``<``, ``<=``), ``-field:value``,
    ``NOT field:value``, quoted values and an explicit ``AND``. ``OR`` is not supported (our design
    choice: the code never sends it). Free-text terms are ignored.
    """
    if not query:
        return []
    try:
        tokens = shlex.split(query)
    except ValueError:
        tokens = query.split()
    terms, negate_next = [], False
    for token in tokens:
        if token == "AND":
            continue
        if token == "NOT":
            negate_next = True
            continue
        negated = negate_next or token.startswith("-")
        negate_next = False
        match = _COMPARISON.match(token.lstrip("-"))
        if match:
            value = match.group("value").strip("'\"")
            terms.append((negated, match.group("field"), match.group("op") or ":", value))
    return terms


def parse_time(value: str) -> datetime | None:
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def compare(left: Any, op: str, right: Any) -> bool:
    if left is None or right is None:
        return False
    return {
        ":": left == right,
        ">=": left >= right,
        ">": left > right,
        "<=": left <= right,
        "<": left < right,
    }[op]


def all_match(terms: Iterable[tuple[bool, str, str, str]], test: Callable[[str, str, str], bool]) -> bool:
    return all(test(field, op, value) != negated for negated, field, op, value in terms)
