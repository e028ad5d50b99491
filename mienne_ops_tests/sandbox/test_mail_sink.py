"""The SMTP sink speaks real SMTP, requires the sandbox's login, and keeps what it is given."""

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.errors import AuthError, PermanentError
from mienne_ops.integrations.email import EmailAlertResource
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("mail_sink")
SMTP = credentials.SMTP


@pytest.fixture
def url(server) -> Iterator[str]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url


def mailer(port: int, password: str = SMTP["password"]) -> EmailAlertResource:
    return EmailAlertResource(
        host="127.0.0.1",
        port=port,
        username=SMTP["username"],
        password=password,
        sender=SMTP["sender"],
        recipients=["ops@example.invalid", "oncall@example.invalid"],
    )


def test_a_mail_sent_with_smtplib_is_kept_with_its_envelope_subject_and_body(url, server):
    assert httpx.get(f"{url}/_sandbox/mail/server").json() == {"host": "127.0.0.1", "port": server.smtp_port}
    mailer(server.smtp_port).send("[mienne-ops ALERT] subject", "line one\nline two")
    (kept,) = httpx.get(f"{url}/_sandbox/mail/messages").json()["messages"]
    assert kept["from"] == SMTP["sender"]
    assert kept["to"] == ["ops@example.invalid", "oncall@example.invalid"]
    assert kept["subject"] == "[mienne-ops ALERT] subject"
    assert kept["body"].splitlines() == ["line one", "line two"]
    assert httpx.get(f"{url}/_sandbox/state").json()["mail"]["messages"] == [kept]


def test_a_wrong_password_is_refused_and_nothing_is_kept(url, server):
    with pytest.raises(AuthError):
        mailer(server.smtp_port, password="wrong").send("s", "b")
    assert httpx.get(f"{url}/_sandbox/mail/messages").json()["messages"] == []


def test_without_a_login_the_sink_refuses_the_mail(url, server):
    anonymous = mailer(server.smtp_port).model_copy(update={"username": ""})
    with pytest.raises(PermanentError, match="530"):
        anonymous.send("s", "b")
    assert httpx.get(f"{url}/_sandbox/mail/messages").json()["messages"] == []
