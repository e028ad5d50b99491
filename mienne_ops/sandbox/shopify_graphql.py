"""The GraphQL machinery of the Shopify fake: the real schema, query cost, connections and search.

Documents run through graphql-core against Shopify's real 2026-04 introspection, so a document the
real Admin API would reject is rejected here too. Resolvers stay small because one generic field
resolver reads dict keys and turns Python lists into Relay connections (`edges`, `nodes`,
`pageInfo`, `first`/`after`/`last`/`reverse`, at most 250 nodes). Query cost is Shopify's rule
(`requested_cost`, priced statically from the document and its variables before anything runs; the
actual cost, `ActualCost`, by the same rule over what execution returned); the leaky bucket mirrors
Shopify's `throttleStatus`, with the plans' restore rates as presets (`PLANS`).
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
from itertools import zip_longest
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_client_schema,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    parse,
    value_from_ast_untyped,
)

MAX_PAGE_SIZE = 250
#: True while a bulk operation runs its query (`shopify_bulk`): every connection returns all of its
#: nodes, since bulk queries ignore ``first``/``last`` and cursors.
UNBOUNDED_PAGES: ContextVar[bool] = ContextVar("unbounded_pages", default=False)
MUTATION_COST = 10
CONNECTION_BASE_COST = 2
OBJECT_COST = 1
MAX_QUERY_COST = 1000  # Shopify's single-query maximum of requested points

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
# Shopify's calculated query cost (shopify.md §6.2; shopify.dev "GraphQL Admin API rate limits"):
# scalar and enum 0, object 1, interface and union the dearest of their possible selections, a
# connection `2 + first × (one node)` so nested connections multiply, a mutation field 10. Decisions
# where the public rule is silent (our design choice, each the stricter reading, never kinder):
# - a mutation costs 10 PLUS its payload's selection (read like any object field's own cost + children);
# - a list field with `first`/`last` is priced like a connection (`2 + size × element`), a list with
#   an `ids` argument (`nodes(ids:)`) `len(ids) × element`, any other list as one element;
# - `pageInfo` and the edge wrapper are free (the connection's 2 covers them); a connection selected
#   both as `nodes` and as `edges { node }` is priced once, the dearer of the two.
# Shopify staff say real connections scale logarithmically (cheaper); the linear rule above is the
# documented one and an upper bound, so a document that fits here fits on a real store.
Path = tuple[str | int, ...]


def requested_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None,
    breakdown: list[dict[str, Any]] | None = None,
) -> int:
    """The cost Shopify reserves for ``operation`` before running it (static: document + variables).

    ``breakdown`` collects one entry per priced field, as ``Shopify-GraphQL-Cost-Debug: 1`` shows it.
    """
    pricer = _Pricer(schema, fragments, _with_defaults(operation, variables or {}))
    mutation = operation.operation.value == "mutation"
    root = schema.mutation_type if mutation else schema.query_type
    assert root is not None
    total = 0
    for node, parent in pricer.fields(root, operation.selection_set):
        total += pricer.field(parent, node, (), breakdown, root_mutation=mutation)
    return total


def _with_defaults(operation: OperationDefinitionNode, variables: dict[str, Any]) -> dict[str, Any]:
    """The variables as sent, plus the defaults the operation declares for the ones left out."""
    merged = dict(variables)
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in merged and definition.default_value is not None:
            merged[name] = value_from_ast_untyped(definition.default_value)
    return merged


class _Pricer:
    """Walks a selection set once per possible runtime type and prices it by Shopify's rule."""

    def __init__(self, schema: GraphQLSchema, fragments, variables: dict[str, Any]) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables

    # -- selections ---------------------------------------------------------------------------
    def fields(self, parent: Any, selection_set: SelectionSetNode | None) -> list[tuple[FieldNode, Any]]:
        """The field nodes that run on ``parent`` (a concrete or abstract type), fragments flattened."""
        found: list[tuple[FieldNode, Any]] = []
        for selection in selection_set.selections if selection_set else ():
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                found.append((selection, parent))
                continue
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None:
                    continue
                condition, inner = fragment.type_condition, fragment.selection_set
            elif isinstance(selection, InlineFragmentNode):
                condition, inner = selection.type_condition, selection.selection_set
            else:
                continue
            target = self.schema.get_type(condition.name.value) if condition else parent
            if target is not None and self._applies(target, parent):
                found.extend(self.fields(parent, inner))
        return found

    def _applies(self, condition: Any, runtime: Any) -> bool:
        if condition.name == runtime.name:
            return True
        return (
            is_abstract_type(condition)
            and isinstance(runtime, GraphQLObjectType)
            and (self.schema.is_sub_type(condition, runtime))
        )

    def _included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            if directive.name.value in ("skip", "include"):
                arguments = {a.name.value: a.value for a in directive.arguments}
                flag = (
                    bool(value_from_ast_untyped(arguments["if"], self.variables))
                    if "if" in arguments
                    else False
                )
                if flag == (directive.name.value == "skip"):
                    return False
        return True

    def selection(self, parent: Any, selection_set, path: Path, breakdown) -> int:
        """Cost of a selection on ``parent``; an abstract parent costs its dearest possible type."""
        if not is_abstract_type(parent):
            return sum(self.field(p, node, path, breakdown) for node, p in self.fields(parent, selection_set))
        candidates = [parent, *self._named_types(selection_set, parent)]
        costs = [(self.selection_on(c, selection_set, path, None), c) for c in candidates]
        best = max(costs, key=lambda pair: pair[0])[1]
        return self.selection_on(best, selection_set, path, breakdown)

    def selection_on(self, runtime: Any, selection_set, path: Path, breakdown) -> int:
        return sum(self.field(p, node, path, breakdown) for node, p in self.fields(runtime, selection_set))

    def _named_types(self, selection_set, abstract: Any) -> list[Any]:
        """Concrete types named by fragments under an abstract parent (its priced alternatives)."""
        named: dict[str, Any] = {}
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                condition = fragment.type_condition if fragment else None
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
            else:
                continue
            target = self.schema.get_type(condition.name.value) if condition else None
            if isinstance(target, GraphQLObjectType) and self.schema.is_sub_type(abstract, target):
                named[target.name] = target
            elif target is not None and is_abstract_type(target):
                inner = (
                    fragment.selection_set
                    if isinstance(selection, FragmentSpreadNode)
                    else selection.selection_set
                )  # type: ignore[union-attr]
                for concrete in self._named_types(inner, target):
                    if self.schema.is_sub_type(abstract, concrete):
                        named[concrete.name] = concrete
        return list(named.values())

    # -- fields -------------------------------------------------------------------------------
    def field(self, parent: Any, node: FieldNode, path: Path, breakdown, root_mutation: bool = False) -> int:
        definition = getattr(parent, "fields", {}).get(node.name.value)
        if definition is None:  # __typename and other introspection fields
            return 0
        here = (*path, node.alias.value if node.alias else node.name.value)
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            own, children, total = 0, None, 0
        else:
            arguments = {
                a.name.value: value_from_ast_untyped(a.value, self.variables) for a in node.arguments
            }
            own, children, total = self._composite(definition, named, node, arguments, here, breakdown)
            if root_mutation:
                own, total = MUTATION_COST, MUTATION_COST + (total - own)
        if breakdown is not None:
            breakdown.append(
                {
                    "path": list(here),
                    "definedCost": own,
                    "requestedTotalCost": total,
                    "requestedChildrenCost": children,
                }
            )
        return total

    def _composite(
        self, definition, named, node: FieldNode, arguments, here: Path, breakdown
    ) -> tuple[int, int, int]:
        """(own cost, children cost, total) of a field returning an object, interface, union or list."""
        if is_connection_type(definition.type):
            each = self._node_cost(named, node.selection_set, here, breakdown)
            size = _page_size_argument(arguments)
            extra = self._connection_extras(named, node.selection_set, here, breakdown)
            return CONNECTION_BASE_COST, size * each + extra, CONNECTION_BASE_COST + size * each + extra
        element = OBJECT_COST + self.selection(named, node.selection_set, here, breakdown)
        if isinstance(get_nullable_type(definition.type), GraphQLList):
            if _page_size_argument(arguments):
                size = _page_size_argument(arguments)
                return CONNECTION_BASE_COST, size * element, CONNECTION_BASE_COST + size * element
            ids = arguments.get("ids")
            if isinstance(ids, list):
                return 0, len(ids) * element, len(ids) * element
        return OBJECT_COST, element - OBJECT_COST, element

    def _node_cost(self, connection: GraphQLObjectType, selection_set, path: Path, breakdown) -> int:
        """One node of a connection: the dearer of its `nodes` and `edges { node }` selections."""
        best = 0
        for node, parent in self.fields(connection, selection_set):
            name = node.name.value
            if name not in ("nodes", "edges"):
                continue
            item_type = get_named_type(parent.fields[name].type)
            here = (*path, node.alias.value if node.alias else name)
            if name == "nodes":
                cost = OBJECT_COST + self.selection(item_type, node.selection_set, here, breakdown)
            else:  # the edge wrapper is free; its `node` field is an object like any other
                cost = self.selection(item_type, node.selection_set, here, breakdown)
            best = max(best, cost)
        return best

    def _connection_extras(self, connection, selection_set, path: Path, breakdown) -> int:
        """Fields of the connection itself besides its items and `pageInfo` (rare; priced once)."""
        extras = 0
        for node, parent in self.fields(connection, selection_set):
            if node.name.value not in ("nodes", "edges", "pageInfo"):
                extras += self.field(parent, node, path, breakdown)
        return extras


def _page_size_argument(arguments: dict[str, Any]) -> int:
    size = arguments.get("first")
    if size is None:
        size = arguments.get("last")
    return int(size) if isinstance(size, int) else 0


def is_connection_type(graphql_type: Any) -> bool:
    return _is_connection(get_nullable_type(graphql_type))


def fragments_of(document) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def operation_cost(
    schema: GraphQLSchema, document_text: str, variables: dict[str, Any] | None = None, operation_name=None
) -> int:
    """The requested cost of a document given as text (for tests and the pricing of shipped docs)."""
    document = parse(document_text)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operation = next(
        o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)
    )
    return requested_cost(schema, operation, fragments_of(document), variables)


class ActualCost:
    """graphql-core middleware pricing what a query actually returned (Shopify's ``actualQueryCost``).

    The same rules as `requested_cost`, applied to the executed result: an object returned costs 1
    (a null one nothing), a connection ``2 +`` the cost of each node it returned, a sized list
    ``2 +`` each element's, a plain list its dearest element, a mutation field 10 plus its payload.
    Only fields that ran are priced, so type conditions that did not match cost nothing. Never
    above the requested cost: every returned count is at most its ``first``/``last``.
    """

    def __init__(self) -> None:
        self._fields: dict[Path, tuple[str, int]] = {}

    def resolve(self, next_: Callable[..., Any], root: Any, info, **args: Any) -> Any:
        value = next_(root, info, **args)
        if value is not None and not is_leaf_type(get_named_type(info.return_type)):
            path = tuple(info.path.as_list())
            mutation = len(path) == 1 and info.parent_type is info.schema.mutation_type
            self._fields[path] = ("mutation", 0) if mutation else _shape(info, args, value)
        return value

    def total(self) -> int:
        children: dict[Path, list[Path]] = defaultdict(list)
        for path in self._fields:
            children[path[:-1]].append(path)

        def selection(container: Path) -> int:
            return sum(field(path) for path in children.get(container, ()))

        def items(path: Path, count: int, wrapper: bool) -> list[int]:
            # An item of `nodes` (or of any list of objects) is an object; an edge is a free wrapper.
            return [selection((*path, index)) + (0 if wrapper else OBJECT_COST) for index in range(count)]

        def field(path: Path) -> int:
            kind, count = self._fields[path]
            if kind in ("page info", "connection items"):
                return 0
            if kind == "object":
                return OBJECT_COST + selection(path)
            if kind == "mutation":
                return MUTATION_COST + selection(path)
            if kind == "connection":
                per_node: list[int] = []
                for child in children.get(path, ()):
                    child_kind, child_count = self._fields[child]
                    if child_kind == "connection items":
                        costs = items(child, child_count, wrapper=child[-1] == "edges")
                        per_node = [max(a, b) for a, b in zip_longest(per_node, costs, fillvalue=0)]
                extras = sum(
                    field(c)
                    for c in children.get(path, ())
                    if self._fields[c][0] not in ("connection items", "page info")
                )
                return CONNECTION_BASE_COST + sum(per_node) + extras
            elements = items(path, count, wrapper=False)
            if kind == "sized list":
                return CONNECTION_BASE_COST + sum(elements)
            if kind == "ids list":
                return sum(elements)
            return max(elements, default=0)

        return selection(())


def _shape(info, args: dict[str, Any], value: Any) -> tuple[str, int]:
    """How `ActualCost` prices one resolved field: its kind and how many items it returned."""
    return_type = get_nullable_type(info.return_type)
    parent_is_connection = _is_connection(info.parent_type)
    if parent_is_connection and info.field_name == "pageInfo":
        return "page info", 0
    count = len(value) if isinstance(value, list) else 0
    if parent_is_connection and info.field_name in ("nodes", "edges"):
        return "connection items", count
    if _is_connection(return_type):
        return "connection", 0
    if isinstance(return_type, GraphQLList):
        if _page_size_argument(args):
            return "sized list", count
        if isinstance(args.get("ids"), list):
            return "ids list", count
        return "list", count
    return "object", 0


def max_cost_exceeded(cost: int) -> dict[str, Any]:
    """Shopify's answer to a document over the single-query maximum: nothing ran, no ``data``."""
    message = (
        f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n"
        "See https://shopify.dev/docs/api/usage/rate-limits for more information on how the\n"
        "cost of a query is calculated.\n\n"
        "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
        "See https://shopify.dev/docs/api/usage/bulk-operations/queries for usage details.\n"
    )
    extensions = {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST}
    return {"errors": [{"message": message, "extensions": extensions}]}


# -- leaky bucket ---------------------------------------------------------------------------------
# Restore rates per plan are Shopify's (shopify.md "Current facts" 5, §6.2). The bucket size is
# confirmed only for Standard (maximumAvailable 2,000 at 100 points/s); the others assume the same
# 20 seconds of restore (our assumption; clients read maximumAvailable instead of hard-coding it).
PLANS: dict[str, tuple[float, float]] = {
    "standard": (2000.0, 100.0),
    "advanced": (4000.0, 200.0),
    "plus": (20000.0, 1000.0),
    "enterprise": (40000.0, 2000.0),
}


class CostBucket:
    """Shopify's GraphQL leaky bucket: ``maximumAvailable`` points restored at ``restoreRate``/s."""

    def __init__(self, maximum: float = 2000.0, restore_rate: float = 100.0) -> None:
        self._lock = threading.Lock()
        self.throttled = 0  # requests refused THROTTLED (the sandbox's reset zeroes it)
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
                self.throttled += 1
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
