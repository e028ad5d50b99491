"""The DCL client's RMAs (ReturnTrak) against the DCL sandbox over real HTTP.

Time never passes by sleeping: receipts and scans carry their own times through the control plane.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from mienne_ops.domain.dcl_records import DclRma
from mienne_ops.errors import AmbiguousWriteError, PermanentError, RemoteValidationError
from mienne_ops.integrations.dcl import LABEL_REFUSED, DclResource, RmaCreated
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("dcl")

US = {
    "attention": "Jane Doe",
    "address1": "1 Main St",
    "city": "Austin",
    "state_province": "TX",
    "postal_code": "78701",
    "country_code": "US",
}
CA = {
    "attention": "Luc Tremblay",
    "address1": "10 Rue Sainte-Catherine",
    "city": "Montreal",
    "state_province": "QC",
    "postal_code": "H2X 1L4",
    "country_code": "CA",
}


@pytest.fixture
def url(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    httpx.post(f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000}).raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


@pytest.fixture
def client(url):
    resource = DclResource(
        base_url=f"{url}/dcl",
        username=credentials.DCL["username"],
        password=credentials.DCL["password"],
        account_number=credentials.DCL["account_number"],
        freight_account=credentials.DCL["freight_account"],
        retry_base_delay_seconds=0.01,
        max_attempts=8,
    )
    built = resource.build_client()
    yield built
    built.close()


def rma(number: str | None, *, address=US, carrier="USPS", service="GROUND ADVANTAGE", label=True, **extra):
    body = {
        "rma_type": "T01",
        "disposition": 2,
        "original_order_number": "SO-1001",
        "shipping_address": address,
        "shipping_carrier": carrier,
        "shipping_service": service,
        "generate_return_service_label": label,
        "lines": [
            {"item_number": "MN-SERUM-001", "quantity": 2},
            {"item_number": "MN-CREAM-002", "quantity": 1},
        ],
        **extra,
    }
    if number is not None:
        body["rma_number"] = number
    return body


def control(url: str, path: str, body: dict | None = None) -> dict:
    response = httpx.post(f"{url}/_sandbox/dcl/{path}", json=body or {})
    response.raise_for_status()
    return response.json()


def receive(url: str, number: str, lines: list[dict], at: datetime) -> dict:
    return control(url, f"rmas/{number}/receive", {"lines": lines, "received_at": at.isoformat()})


def stock(url: str, item: str, warehouse: str = "FR") -> dict:
    response = httpx.get(
        f"{url}/dcl/api/v1/items",
        params={"item_numbers": item, "inventory_type": warehouse},
        auth=(credentials.DCL["username"], credentials.DCL["password"]),
    )
    response.raise_for_status()
    (row,) = response.json()["items"]
    return row


def test_us_and_canadian_labels_use_their_own_services(client, url):
    us = client.create_rma(rma("RA-1"))
    ca = client.create_rma(rma("RA-2", address=CA, carrier="CANADA POST", service="EXPEDITED PARCEL"))
    assert isinstance(us, RmaCreated) and us.created and ca.created
    assert us.rma_number == "RA-1" and us.label_url and us.tracking_number
    assert "usps/ground-advantage" in us.label_url and us.tracking_number.startswith("92")
    assert "canada-post/expedited-parcel" in (ca.label_url or "") and (ca.tracking_number or "").endswith(
        "CA"
    )
    label = httpx.get(us.label_url)
    assert label.status_code == 200 and label.content.startswith(b"%PDF")
    assert b"USPS" in label.content and us.tracking_number.encode() in label.content
    (read,) = client.rmas(["RA-2"])
    assert read.return_label_url == ca.label_url and read.shipping_carrier == "CANADA POST"
    assert read.original_order_number == "SO-1001" and isinstance(read.rma_date, date)
    assert [(line.item_number, line.quantity, line.quantity_received) for line in read.lines] == [
        ("MN-SERUM-001", 2, 0),
        ("MN-CREAM-002", 1, 0),
    ]


def test_a_rerun_gets_the_existing_rma_and_its_label(client):
    first = client.create_rma(rma("RA-1"))
    again = client.create_rma(rma("RA-1"))
    assert again == RmaCreated("RA-1", first.label_url, first.tracking_number, created=False)
    assert len(client.rmas(["RA-1"])) == 1


def test_a_lost_answer_is_looked_up_not_sent_twice(client, url):
    control(url, "limits", {"drop_response_after_create": True})
    created = client.create_rma(rma("RA-LOST"))
    assert created.rma_number == "RA-LOST" and created.label_url
    assert [r["rma_number"] for r in httpx.get(f"{url}/_sandbox/dcl/rmas").json()["rmas"]] == ["RA-LOST"]


def test_server_errors_are_retried_after_a_lookup(client, url):
    httpx.post(f"{url}/_sandbox/faults", json={"dcl": {"error_rate": 0.5}, "seed": 3}).raise_for_status()
    created = [client.create_rma(rma(f"RA-{n}")) for n in range(6)]
    httpx.post(f"{url}/_sandbox/faults", json={"clear": True}).raise_for_status()
    assert [c.rma_number for c in created] == [f"RA-{n}" for n in range(6)]
    assert len(httpx.get(f"{url}/_sandbox/dcl/rmas").json()["rmas"]) == 6


def test_a_lost_answer_without_a_number_is_not_guessed(client, url):
    control(url, "limits", {"drop_response_after_create": True})
    with pytest.raises(AmbiguousWriteError):
        client.create_rma(rma(None))


def test_refused_labels_are_label_refused_and_create_nothing(client, url):
    with pytest.raises(PermanentError) as wrong_service:
        client.create_rma(rma("RA-1", address=CA))  # USPS is no Canadian return service
    assert wrong_service.value.code == LABEL_REFUSED
    abroad = {**US, "country_code": "FR", "state_province": "", "postal_code": "75001", "city": "Paris"}
    with pytest.raises(PermanentError) as outside:
        client.create_rma(rma("RA-2", address=abroad))
    assert outside.value.code == LABEL_REFUSED
    control(url, "rmas/settings", {"refuse_labels": True})
    with pytest.raises(PermanentError) as refused:
        client.create_rma(rma("RA-3"))
    assert refused.value.code == LABEL_REFUSED
    assert client.rmas(["RA-1", "RA-2", "RA-3"]) == []
    # Without a label the same RMA is taken.
    assert client.create_rma(rma("RA-3", label=False)) == RmaCreated("RA-3", None, None, created=True)


def test_business_rejections_are_remote_validation_errors(client):
    with pytest.raises(RemoteValidationError) as unknown:
        client.create_rma(rma("RA-1", lines=[{"item_number": "NO-SUCH-SKU", "quantity": 1}]))
    assert unknown.value.code not in (None, "0", LABEL_REFUSED)
    with pytest.raises(RemoteValidationError):
        client.create_rma(rma("RA-2", address={**US, "state_province": ""}))
    with pytest.raises(RemoteValidationError):
        client.create_rma(rma("RA-3", disposition=99))
    assert client.rmas(["RA-1", "RA-2", "RA-3"]) == []


def test_page_size_over_fifty_is_refused(url):
    response = httpx.get(
        f"{url}/dcl/api/v2/rmas",
        params={"page_size": 51},
        auth=(credentials.DCL["username"], credentials.DCL["password"]),
    )
    assert response.status_code == 400 and response.json()["error_code"] == 41


def test_iter_rmas_received_from_pages_through_more_than_fifty(client, url):
    start = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    for n in range(57):
        client.create_rma(rma(f"RA-{n:03d}", label=False))
    client.create_rma(rma("RA-EARLY", label=False))
    receive(url, "RA-EARLY", [{"item_number": "MN-SERUM-001", "quantity": 1}], start - timedelta(days=1))
    for n in range(57):
        receive(
            url, f"RA-{n:03d}", [{"item_number": "MN-SERUM-001", "quantity": 1}], start + timedelta(hours=n)
        )
    client.create_rma(rma("RA-NOTHING", label=False))
    found = list(client.iter_rmas(received_from=start))
    assert [r.rma_number for r in found] == [f"RA-{n:03d}" for n in range(57)]
    assert all(r.receipts[0].received_date.tzinfo is not None for r in found)
    assert found[3].receipts[0].received_date == start + timedelta(hours=3)
    # An aware bound is converted to Pacific: half an hour later drops exactly the first receipt.
    assert len(list(client.iter_rmas(received_from=start + timedelta(minutes=30)))) == 56
    assert len(list(client.iter_rmas())) == 59
    assert len(client.rmas([f"RA-{n:03d}" for n in range(57)])) == 57


def test_partial_receipts_accumulate(client, url):
    client.create_rma(rma("RA-1"))
    day1 = datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
    receive(url, "RA-1", [{"item_number": "MN-SERUM-001", "quantity": 1}], day1)
    (after_one,) = client.rmas(["RA-1"])
    assert after_one.received_by_item() == {"MN-SERUM-001": 1}
    receive(
        url,
        "RA-1",
        [
            {"item_number": "MN-SERUM-001", "quantity": 2},  # one more than authorised
            {"item_number": "MN-TONER-004", "quantity": 1},  # not on the RMA at all
        ],
        day1 + timedelta(days=3),
    )
    (read,) = client.rmas(["RA-1"])
    assert read.received_by_item() == {"MN-SERUM-001": 3, "MN-TONER-004": 1}
    assert [r.received_date for r in read.receipts] == [day1, day1 + timedelta(days=3)]
    assert {line.item_number: (line.quantity, line.quantity_received) for line in read.lines} == {
        "MN-SERUM-001": (2, 3),
        "MN-CREAM-002": (1, 0),
        "MN-TONER-004": (0, 1),
    }
    assert [r.rma_number for r in client.iter_rmas(received_from=day1 + timedelta(days=1))] == ["RA-1"]


def test_damaged_returns_do_not_become_available_and_open_rma_counts_what_is_expected(client, url):
    before = stock(url, "MN-SERUM-001")
    client.create_rma(rma("RA-1"))
    assert stock(url, "MN-SERUM-001")["open_rma"] == before["open_rma"] + 2
    at = datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
    receive(url, "RA-1", [{"item_number": "MN-SERUM-001", "quantity": 1, "condition": "damaged"}], at)
    damaged = stock(url, "MN-SERUM-001")
    assert damaged["on_hand"] == before["on_hand"] + 1 and damaged["on_hold"] == before["on_hold"] + 1
    assert damaged["available"] == before["available"] and damaged["open_rma"] == before["open_rma"] + 1
    receive(url, "RA-1", [{"item_number": "MN-SERUM-001", "quantity": 1, "condition": "good"}], at)
    good = stock(url, "MN-SERUM-001")
    assert good["available"] == before["available"] + 1 and good["open_rma"] == before["open_rma"]
    (read,) = client.rmas(["RA-1"])
    assert [line.condition for receipt in read.receipts for line in receipt.lines] == ["damaged", "good"]


def test_an_rma_typed_in_the_portal_shows_up_in_the_poll(client, url):
    client.create_rma(rma("RA-1", label=False))
    portal = control(
        url,
        "rmas",
        {
            "rma_type": "T01",
            "disposition": 1,
            "shipping_address": US,
            "lines": [{"item_number": "MN-MASK-005", "quantity": 1}],
        },
    )
    assert portal["rma_number"].startswith("RMA") and portal["return_label_url"] is None
    at = datetime(2026, 3, 9, 18, 0, tzinfo=UTC)
    receive(url, portal["rma_number"], [{"item_number": "MN-MASK-005", "quantity": 1}], at)
    assert [r.rma_number for r in client.iter_rmas(received_from=at - timedelta(hours=1))] == [
        portal["rma_number"]
    ]


def test_first_scan_cancel_and_expiry_are_read_as_utc(client, url):
    client.create_rma(rma("RA-1"))
    scanned = datetime(2026, 3, 3, 15, 30, tzinfo=UTC)
    control(url, "rmas/RA-1/scan", {"at": scanned.isoformat()})
    control(url, "rmas/RA-1/scan", {"at": (scanned + timedelta(days=1)).isoformat()})  # the first counts
    (read,) = client.rmas(["RA-1"])
    assert read.first_scan_date == scanned and read.cancelled_date is None and read.expired_date is None
    control(url, "rmas/RA-1/expire", {"at": (scanned + timedelta(days=30)).isoformat()})
    (expired,) = client.rmas(["RA-1"])
    assert expired.expired_date == scanned + timedelta(days=30)


def test_records_parse_dcl_shapes():
    parsed = DclRma.model_validate(
        {
            "rma_number": "RA-9",
            "rma_date": "2026-03-01",
            "original_order_number": None,
            "cancelled_date": "",
            "first_scan_date": "2026-03-02T08:00:00",  # naive: Pacific
            "lines": [{"item_number": "A", "quantity": "2", "quantity_received": 1.0}],
            "receipts": [
                {
                    "receipt_id": "R1",
                    "received_date": "2026-03-03T09:00:00",
                    "lines": [{"item_number": "A", "quantity": 1, "condition": "good"}],
                }
            ],
            "some_new_field": 1,
        }
    )
    assert parsed.first_scan_date == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert parsed.receipts[0].received_date == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    assert parsed.lines[0].quantity == 2 and parsed.received_by_item() == {"A": 1}
    assert parsed.cancelled_date is None and parsed.rma_date == date(2026, 3, 1)
