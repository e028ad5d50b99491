"""SuiteQL dates in the NetSuite sandbox: the account's date preference, TO_CHAR, TO_DATE, BUILTIN.DF.

NetSuite answers a date column in the account's date format (default ``M/D/YYYY``: ``6/15/2024``),
a date-time column such as ``lastmodifieddate`` without its time, and ``TO_CHAR`` exactly as asked.
The queries are signed by requests-oauthlib, a second TBA signer independent of the product's client.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1Session

from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

SUITEQL = "/services/rest/query/v1/suiteql"

server = single_system_server("netsuite")


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[OAuth1Session]:
    """A plain OAuth 1.0a HTTP session (not the product's client), on a fresh sandbox."""
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    session = OAuth1Session(
        NETSUITE["consumer_key"],
        client_secret=NETSUITE["consumer_secret"],
        resource_owner_key=NETSUITE["token_id"],
        resource_owner_secret=NETSUITE["token_secret"],
        signature_method=SIGNATURE_HMAC_SHA256,
        realm=NETSUITE["account_id"],
    )
    yield session
    session.close()


def purchase_order(server: SandboxServer, **dates: str) -> str:
    body = {"lines": [{"sku": "MN-SERUM-001", "quantity": 1}], **dates}
    response = httpx.post(f"{server.url}/_sandbox/netsuite/purchase_orders", json=body)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def rows(server: SandboxServer, admin: OAuth1Session, q: str) -> list[dict]:
    response = admin.post(
        f"{server.url}/netsuite{SUITEQL}", json={"q": q}, headers={"Prefer": "transient"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return [{k: v for k, v in item.items() if k != "links"} for item in response.json()["items"]]


def set_date_format(server: SandboxServer, value: str) -> httpx.Response:
    return httpx.post(f"{server.url}/_sandbox/netsuite/preferences", json={"date_format": value})


@pytest.mark.parametrize(
    ("preference", "trandate", "duedate"),
    [
        ("M/D/YYYY", "6/5/2024", "12/1/2024"),
        ("D/M/YYYY", "5/6/2024", "1/12/2024"),
        ("DD.MM.YYYY", "05.06.2024", "01.12.2024"),
        ("DD-Mon-YYYY", "05-Jun-2024", "01-Dec-2024"),
    ],
)
def test_date_columns_come_in_the_account_preference(server, admin, preference, trandate, duedate):
    po = purchase_order(server, tranDate="2024-06-05", dueDate="2024-12-01")
    assert set_date_format(server, preference).json() == {"date_format": preference}
    (row,) = rows(
        server,
        admin,
        f"SELECT t.trandate, t.duedate AS due, t.lastmodifieddate, BUILTIN.DF(t.trandate) AS shown, "
        f"MAX(t.duedate) AS latest FROM transaction t WHERE t.id = {po}",
    )
    assert (row["trandate"], row["due"], row["shown"], row["latest"]) == (
        trandate,
        duedate,
        trandate,
        duedate,
    )
    # A date-time column comes as a date in the same format, without its time.
    assert ":" not in row["lastmodifieddate"]
    assert len(row["lastmodifieddate"].replace(".", "/").replace("-", "/").split("/")) == 3


def test_default_preference_is_m_d_yyyy_and_reset_restores_it(server, admin):
    assert httpx.get(f"{server.url}/_sandbox/netsuite/preferences").json() == {"date_format": "M/D/YYYY"}
    set_date_format(server, "D/M/YYYY")
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    po = purchase_order(server, tranDate="2024-06-15")
    assert rows(server, admin, f"SELECT trandate FROM transaction WHERE id = {po}") == [
        {"trandate": "6/15/2024"}
    ]


def test_to_char_formats_exactly_as_asked_whatever_the_preference(server, admin):
    po = purchase_order(server, tranDate="2024-06-05")
    set_date_format(server, "D/M/YYYY")
    (row,) = rows(
        server,
        admin,
        "SELECT TO_CHAR(t.trandate, 'YYYY-MM-DD') AS iso, TO_CHAR(t.trandate, 'DD-MON-YY') AS oracle, "
        "TO_CHAR(t.trandate, 'FMMonth DD, YYYY') AS words, TO_CHAR(t.trandate) AS plain, "
        "TO_CHAR(t.lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS stamp "
        f"FROM transaction t WHERE t.id = {po}",
    )
    assert (row["iso"], row["oracle"], row["words"], row["plain"]) == (
        "2024-06-05",
        "05-JUN-24",
        "June 5, 2024",
        "5/6/2024",
    )
    assert len(row["stamp"]) == 19 and row["stamp"][10] == "T"


def test_where_compares_real_dates(server, admin):
    early = purchase_order(server, tranDate="2024-06-05")
    late = purchase_order(server, tranDate="2024-11-20")
    set_date_format(server, "D/M/YYYY")

    def ids(where: str) -> list[str]:
        return [r["id"] for r in rows(server, admin, f"SELECT id FROM transaction WHERE {where} ORDER BY id")]

    # As text, '5/6/2024' > '20/11/2024' ... as dates, June is before November.
    assert ids("trandate > TO_DATE('2024-07-01', 'YYYY-MM-DD')") == [late]
    assert ids("trandate >= TO_DATE('01/07/2024')") == [late]  # no format: the preference's
    assert ids(
        "trandate BETWEEN TO_DATE('2024-06-05', 'YYYY-MM-DD') AND TO_DATE('2024-06-05', 'YYYY-MM-DD')"
    ) == [early]
    assert ids("trandate < SYSDATE AND lastmodifieddate <= SYSDATE") == [early, late]
    assert ids("TRUNC(lastmodifieddate) <= lastmodifieddate") == [early, late]
    newest = rows(server, admin, "SELECT MAX(trandate) AS d FROM transaction")
    assert newest == [{"d": "20/11/2024"}]
    ordered = rows(server, admin, "SELECT id FROM transaction ORDER BY trandate DESC, id")
    assert [r["id"] for r in ordered] == [late, early]


def test_bad_dates_and_formats_are_400_invalid_parameter(server, admin):
    purchase_order(server)
    set_date_format(server, "D/M/YYYY")
    for q in (
        "SELECT id FROM transaction WHERE trandate > TO_DATE('6/15/2024')",  # month 15 under D/M/YYYY
        "SELECT id FROM transaction WHERE trandate > TO_DATE('2024-06-15', 'YYYY-MM-DDTHH24')",
        "SELECT TO_CHAR(trandate, 'YYYY-QQ') FROM transaction",
    ):
        response = admin.post(
            f"{server.url}/netsuite{SUITEQL}", json={"q": q}, headers={"Prefer": "transient"}, timeout=30
        )
        assert response.status_code == 400, (q, response.text)
        detail = response.json()["o:errorDetails"][0]
        assert detail["o:errorCode"] == "INVALID_PARAMETER" and "ORA-" in detail["detail"], detail


def test_preferences_route_refuses_unknown_formats_and_fields(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    assert set_date_format(server, "Y/M/D").status_code == 400
    assert (
        httpx.post(f"{server.url}/_sandbox/netsuite/preferences", json={"timezone": "UTC"}).status_code == 400
    )
    assert httpx.post(f"{server.url}/_sandbox/netsuite/preferences", content=b"{").status_code == 400
    assert httpx.get(f"{server.url}/_sandbox/netsuite/preferences").json() == {"date_format": "M/D/YYYY"}
