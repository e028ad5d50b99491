"""Every document the Shopify client ships fits Shopify's single-query cost limit as it is sent.

Shopify prices a query before running it and refuses one over 1,000 points (shopify.md §6.2). Each
document is priced here with the sandbox's calculator (the same code that enforces the limit over
HTTP) at the variables the client really sends (`SENT_VARIABLES`, which the client's paging uses),
with a margin: 900.
"""

from __future__ import annotations

import re

import pytest

from mienne_ops.integrations import shopify
from mienne_ops.integrations.shopify import SENT_VARIABLES, document, document_names
from mienne_ops.sandbox.shopify_graphql import admin_schema, operation_cost

BUDGET = 900


@pytest.mark.parametrize("name", document_names())
def test_shipped_document_fits_under_the_budget_at_the_sizes_sent(name):
    cost = operation_cost(admin_schema(), document(name), SENT_VARIABLES.get(name, {}))
    assert 0 < cost <= BUDGET, f"{name} costs {cost} requested points at the sizes the client sends"


@pytest.mark.parametrize("name", document_names())
def test_a_document_with_a_size_variable_says_what_size_it_is_sent_with(name):
    # A `$first` (or `$ids`, `$lineItems` …) left out of SENT_VARIABLES would be priced at 0.
    declared = set(re.findall(r"\$(\w+)\s*:\s*(?:Int|\[ID)", document(name)))
    assert declared <= set(SENT_VARIABLES.get(name, {})), f"{name}: give {declared} in SENT_VARIABLES"


def test_the_documents_that_were_over_the_limit_are_priced_as_the_issue_measured():
    """The calculator multiplies nested lists: a page of 50 orders of 50 lines is far over."""
    schema = admin_schema()
    old_page = shopify.document("orders").replace("lineItems(first: $lineItems)", "lineItems(first: 50)")
    old_page = old_page.replace(", $lineItems: Int!", "")
    assert operation_cost(schema, old_page, {"first": 50}) > 30_000
    # An order is 102 points (the order 1, nine money bags 18, customer 2, addresses 2, tax lines 3,
    # risk 2, shippingLines 2 + 5 × 8, transactions 2 + 10 × 3) plus lineItems 2 + 12 per line.
    assert operation_cost(schema, document("order"), SENT_VARIABLES["order"]) == 102 + 2 + 50 * 12
    # A page sent by iter_orders: 2 + 3 orders × (102 + 2 + 10 lines × 12).
    assert operation_cost(schema, document("orders"), SENT_VARIABLES["orders"]) == 2 + 3 * (104 + 10 * 12)
