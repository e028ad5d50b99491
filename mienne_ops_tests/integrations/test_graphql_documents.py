"""Every GraphQL document the Shopify client sends is valid against Shopify's real 2026-04 schema."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from mienne_ops.integrations.shopify import document, document_names
from mienne_ops.sandbox.shopify_graphql import admin_schema


def test_the_client_has_documents():
    assert {"orders", "order", "tags_add", "fulfillment_create", "fulfillment_orders"} <= set(
        document_names()
    )


@pytest.mark.parametrize("name", document_names())
def test_document_is_valid_against_the_real_schema(name):
    errors = validate(admin_schema(), parse(document(name)))
    assert errors == [], [e.message for e in errors]


def test_an_invalid_document_is_rejected():
    bad = "query { orders(first: 1) { nodes { id notAField } } }"
    errors = validate(admin_schema(), parse(bad))
    assert errors and "notAField" in errors[0].message


def test_order_documents_carry_the_shared_fragment():
    text = document("orders")
    assert "fragment OrderFields on Order" in text and "...OrderFields" in text
