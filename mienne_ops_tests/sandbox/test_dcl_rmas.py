"""The DCL fake's RMAs (ReturnTrak) over raw HTTP: strict validation, codes, labels, paging, control
plane, the limiter and faults, and the demo's auto mode (moved by the world clock, never by sleeping)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

AUTH = (credentials.DCL["username"], credentials.DCL["password"])
US = {
    "attention": "Jane Doe",
    "address1": "1 Main St",
    "city": "Austin",
    "state_province": "TX",
    "postal_code": "78701",
    "country_code": "US",
}

server = single_system_server("dcl")


@pytest.fixture
def api(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    httpx.post(f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000}).raise_for_status()
    with httpx.Client(base_url=server.url, auth=AUTH) as client:
        yield client
    server.world.clock_offset = timedelta(0)
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()


def body(**overrides) -> dict:
    return {
        "account_number": credentials.DCL["account_number"],
        "rma_type": "T01",
        "disposition": 2,
        "shipping_address": US,
        "lines": [{"item_number": "MN-SERUM-001", "quantity": 1}],
        **overrides,
    }


def rejected(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code, response.text
    return response.json()["error_message"]


def test_created_under_v1_v2_and_sandbox_roots_with_one_shared_state(api):
    for prefix, number in (("v1", "A-1"), ("v2", "A-2"), ("sandbox", "A-3")):
        response = api.post(f"/dcl/api/{prefix}/rmas", json=body(rma_number=number))
        assert response.status_code == 201
        assert response.json() == {"error_code": 0, "error_message": "", "rma_number": number}
    generated = api.post("/dcl/api/v2/rmas", json=body()).json()["rma_number"]
    listed = api.get("/dcl/api/v1/rmas", params={"rma_numbers": f"A-1,A-3,{generated}"}).json()
    assert listed["error_code"] == 0 and [r["rma_number"] for r in listed["rmas"]] == [
        "A-1",
        "A-3",
        generated,
    ]
    record = listed["rmas"][0]
    assert set(record) >= {
        "rma_number",
        "rma_date",
        "original_order_number",
        "cancelled_date",
        "expired_date",
        "first_scan_date",
        "return_label_url",
        "return_label_tracking_number",
        "shipping_carrier",
        "shipping_service",
        "disposition",
        "rma_type",
        "lines",
        "receipts",
    }
    assert record["lines"] == [
        {
            "item_number": "MN-SERUM-001",
            "description": record["lines"][0]["description"],
            "quantity": 1,
            "quantity_received": 0,
            "serial_number": None,
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "code", "words"),
    [
        ({"account_number": None}, 10, "account_number"),
        ({"account_number": "99999"}, 13, "account_number"),
        ({"shipping_address": None}, 10, "shipping_address"),
        ({"shipping_address": {**US, "postal_code": ""}}, 14, "postal_code"),
        ({"rma_type": None}, 10, "rma_type"),
        ({"rma_type": "T42"}, 13, "rma_type"),
        ({"disposition": None}, 10, "disposition"),
        ({"disposition": 4}, 13, "disposition"),
        ({"disposition": "2"}, 13, "disposition"),
        ({"lines": []}, 10, "lines"),
        ({"lines": [{"item_number": "NOPE", "quantity": 1}]}, 12, "NOPE"),
        ({"lines": [{"item_number": "MN-SERUM-001", "quantity": 0}]}, 13, "quantity"),
        ({"lines": [{"item_number": "MN-SERUM-001", "quantity": 1.5}]}, 13, "quantity"),
        ({"rma_number": "RA 1"}, 13, "rma_number"),
        ({"rma_number": "R" * 26}, 11, "rma_number"),
        ({"generate_return_service_label": True}, 10, "shipping_carrier"),
        ({"generate_return_service_label": "yes"}, 13, "generate_return_service_label"),
    ],
)
def test_strict_validation_creates_nothing(api, overrides, code, words):
    response = api.post(
        "/dcl/api/v2/rmas", json={k: v for k, v in body(**overrides).items() if v is not None}
    )
    assert words in rejected(response, 400, code)
    assert api.get("/dcl/api/v2/rmas").json()["rmas"] == []


def test_duplicate_number_is_400_code_22_and_changes_nothing(api):
    assert api.post("/dcl/api/v2/rmas", json=body(rma_number="A-1")).status_code == 201
    again = api.post("/dcl/api/v1/rmas", json=body(rma_number="A-1", disposition=3))
    assert rejected(again, 400, 22) == "RMA number already exists: A-1"
    (kept,) = api.get("/dcl/api/v2/rmas").json()["rmas"]
    assert kept["disposition"] == 2


def test_labels_per_country_and_the_refusal_knob(api, server):
    label = {"generate_return_service_label": True}
    ups = api.post(
        "/dcl/api/v2/rmas",
        json=body(rma_number="A-1", shipping_carrier="ups", shipping_service="Ground", **label),
    )
    assert ups.status_code == 201 and ups.json()["return_label_tracking_number"].startswith("1Z")
    assert ups.json()["return_label_url"].startswith(f"{server.url}/_sandbox/dcl/labels/ups/ground/")
    canada = {**US, "country_code": "CA", "state_province": "ON", "postal_code": "M5V 2T6", "city": "Toronto"}
    wrong = api.post(
        "/dcl/api/v2/rmas",
        json=body(
            rma_number="A-2",
            shipping_address=canada,
            shipping_carrier="UPS",
            shipping_service="GROUND",
            **label,
        ),
    )
    assert "UPS GROUND" in rejected(wrong, 200, 15)
    ok = api.post(
        "/dcl/api/v2/rmas",
        json=body(
            rma_number="A-2",
            shipping_address=canada,
            shipping_carrier="UPS",
            shipping_service="STANDARD",
            **label,
        ),
    )
    assert ok.status_code == 201 and "/ups/standard/" in ok.json()["return_label_url"]
    httpx.post(f"{server.url}/_sandbox/dcl/rmas/settings", json={"refuse_labels": True}).raise_for_status()
    refused = api.post(
        "/dcl/api/v2/rmas",
        json=body(rma_number="A-3", shipping_carrier="USPS", shipping_service="GROUND ADVANTAGE", **label),
    )
    assert rejected(refused, 200, 15).startswith("Return label not available")
    assert [r["rma_number"] for r in api.get("/dcl/api/v2/rmas").json()["rmas"]] == ["A-1", "A-2"]
    assert httpx.get(f"{server.url}/_sandbox/dcl/labels/ups/ground/NOPE.pdf").status_code == 404


def test_settings_are_validated_and_configure_the_account(api, server):
    settings = f"{server.url}/_sandbox/dcl/rmas/settings"
    assert httpx.post(settings, json={"dispositions": ["x"]}).status_code == 400
    assert httpx.post(settings, json={"colour": "blue"}).status_code == 400
    assert httpx.post(settings, json={"label_services": {"US": [["USPS"]]}}).status_code == 400
    shown = httpx.post(
        settings,
        json={
            "rma_types": ["T07"],
            "dispositions": [4],
            "label_services": {"GB": [["Royal Mail", "Tracked 48"]]},
        },
    ).json()
    assert shown["rma_types"] == ["T07"] and shown["label_services"] == {"GB": [["ROYAL MAIL", "TRACKED 48"]]}
    assert api.post("/dcl/api/v2/rmas", json=body(rma_type="T07", disposition=4)).status_code == 201
    assert api.post("/dcl/api/v2/rmas", json=body()).json()["error_code"] == 13


def test_listing_filters_and_page_limits(api, server):
    for n in range(3):
        api.post("/dcl/api/v2/rmas", json=body(rma_number=f"A-{n}")).raise_for_status()
    rejected(api.get("/dcl/api/v2/rmas", params={"page_size": 51}), 400, 41)
    page = api.get("/dcl/api/v2/rmas", params={"page_size": 2, "page": 2, "rma_status": "whatever"}).json()[
        "rmas"
    ]
    assert [r["rma_number"] for r in page] == ["A-2"]
    receive = f"{server.url}/_sandbox/dcl/rmas/A-1/receive"
    httpx.post(receive, json={"received_at": "2026-03-02T20:00:00Z"}).raise_for_status()  # 12:00 Pacific

    def numbers(**params):
        return [r["rma_number"] for r in api.get("/dcl/api/v2/rmas", params=params).json()["rmas"]]

    assert numbers(received_from="2026-03-02T12:00:00") == ["A-1"]  # naive = Pacific
    assert numbers(received_from="2026-03-02T12:00:01") == []
    assert numbers(received_from="2026-03-02T12:00:01-08:00") == []
    assert numbers(received_from="2026-03-02", received_to="2026-03-02") == ["A-1"]
    assert numbers(received_to="2026-03-01") == []
    assert numbers(created_from="2026-01-01") == ["A-0", "A-1", "A-2"]
    assert numbers(created_to="2026-01-01") == []
    rejected(api.get("/dcl/api/v2/rmas", params={"received_from": "yesterday"}), 400, 13)
    fields = api.get("/dcl/api/v2/rmas", params={"fields": "rma_number,receipts"}).json()["rmas"]
    assert set(fields[0]) == {"rma_number", "receipts"}


def test_receiving_control_plane_is_strict(api, server):
    api.post("/dcl/api/v2/rmas", json=body(rma_number="A-1")).raise_for_status()
    base = f"{server.url}/_sandbox/dcl/rmas"
    bad_condition = httpx.post(
        f"{base}/A-1/receive",
        json={"lines": [{"item_number": "MN-SERUM-001", "quantity": 1, "condition": "meh"}]},
    )
    assert bad_condition.status_code == 400 and "condition" in bad_condition.text
    assert (
        httpx.post(
            f"{base}/A-1/receive", json={"lines": [{"item_number": "MN-SERUM-001", "quantity": 0}]}
        ).status_code
        == 400
    )
    assert httpx.post(f"{base}/A-1/receive", json={"received_at": "soon"}).status_code == 400
    assert httpx.post(f"{base}/NOPE/receive", json={}).status_code == 404
    assert httpx.post(f"{base}/NOPE/scan", json={}).status_code == 404
    everything = httpx.post(f"{base}/A-1/receive", json={}).json()
    assert everything["lines"] == [{"item_number": "MN-SERUM-001", "quantity": 1, "condition": "good"}]
    assert httpx.post(f"{base}/A-1/receive", json={}).status_code == 409  # nothing left expected
    (listed,) = httpx.get(base).json()["rmas"]
    assert listed["source"] == "api" and listed["location"] == "FR"
    portal = httpx.post(
        base,
        json={
            "rma_type": "T01",
            "disposition": 1,
            "shipping_address": US,
            "lines": [{"item_number": "MN-OIL-006", "quantity": 2}],
            "location": "LA",
        },
    )
    assert portal.status_code == 200 and portal.json()["return_label_url"] is None
    assert httpx.post(base, json={"rma_number": "A-1", **body()}).json()["error_code"] == 22


def test_the_limiter_auth_and_faults_cover_the_rma_routes(api, server):
    assert httpx.get(f"{server.url}/dcl/api/v2/rmas", auth=("x", "y")).json()["error_code"] == 91
    httpx.post(
        f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 2, "frozen_clock": True}
    ).raise_for_status()
    statuses = [api.get("/dcl/api/v2/rmas").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert api.post("/dcl/api/v2/rmas", json=body()).json()["error_code"] == 90
    httpx.post(
        f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000, "frozen_clock": False}
    ).raise_for_status()
    httpx.post(f"{server.url}/_sandbox/faults", json={"dcl": {"error_rate": 1.0}}).raise_for_status()
    assert api.post("/dcl/api/v2/rmas", json=body(rma_number="A-1")).status_code == 503
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True}).raise_for_status()
    assert api.get("/dcl/api/v2/rmas").json()["rmas"] == []


def test_auto_mode_scans_then_receives_as_the_clock_moves(api, server):
    settings = {"auto_scan_after_seconds": 20, "auto_receive_after_seconds": 60}
    httpx.post(f"{server.url}/_sandbox/dcl/rmas/settings", json=settings).raise_for_status()
    api.post(
        "/dcl/api/v2/rmas",
        json=body(rma_number="A-1", lines=[{"item_number": "MN-SERUM-001", "quantity": 2}]),
    ).raise_for_status()

    def read():
        return api.get("/dcl/api/v2/rmas").json()["rmas"][0]

    assert read()["first_scan_date"] is None and read()["receipts"] == []
    server.world.clock_offset = timedelta(seconds=30)
    assert read()["first_scan_date"] is not None and read()["receipts"] == []
    server.world.clock_offset = timedelta(seconds=90)
    (receipt,) = read()["receipts"]
    assert receipt["lines"] == [{"item_number": "MN-SERUM-001", "quantity": 2, "condition": "good"}]
    server.world.clock_offset = timedelta(seconds=300)
    assert len(read()["receipts"]) == 1  # received once


def test_auto_mode_from_the_environment(monkeypatch):
    from mienne_ops.sandbox.dcl_returns import AUTO_ENV, RmaSettings

    assert not RmaSettings.from_env().auto_on
    monkeypatch.setenv(AUTO_ENV, "20,60")
    settings = RmaSettings.from_env()
    assert (settings.auto_scan_after_seconds, settings.auto_receive_after_seconds) == (20.0, 60.0)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("rmas", [1]),
        ("rmas", {"created_at": 5, **body()}),
        ("rmas", {"location": "XX", **body()}),
        ("rmas", {"lines": "all"}),
        ("rmas/settings", {"refuse_labels": "yes"}),
        ("rmas/settings", {"auto_receive_after_seconds": -1}),
        ("rmas/A-1/scan", {"at": "tomorrow"}),
        ("rmas/A-1/receive", {"lines": "all"}),
        ("rmas/A-1/receive", {"lines": [{"item_number": "MN-SERUM-001", "quantity": 1, "grade": "A"}]}),
        ("rmas/A-1/expire", {"at": 3}),
    ],
)
def test_bad_control_input_is_a_400(api, server, path, payload):
    api.post("/dcl/api/v2/rmas", json=body(rma_number="A-1")).raise_for_status()
    response = httpx.post(f"{server.url}/_sandbox/dcl/{path}", json=payload)
    assert response.status_code == 400 and response.json()["error_message"]
