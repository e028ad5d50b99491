"""The shared HTTP core's retry policy and error taxonomy, on scripted transports."""

import httpx
import pytest

from mienne_ops.errors import (
    AmbiguousWriteError,
    AuthError,
    NotFoundError,
    RemoteValidationError,
    TransientError,
)
from mienne_ops.integrations.http import CallStats, HttpCore, RetryPolicy, parse_retry_after


def scripted(*answers):
    """A transport answering each request with the next item (a response or an exception)."""
    queue = list(answers)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


def core_for(transport, sleeps, attempts=4):
    return HttpCore(
        system="acme",
        base_url="https://api.acme.test",
        transport=transport,
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.05),
        sleep=sleeps.append,
        stats=CallStats(),
    )


def test_retry_after_is_honoured_on_429_and_503():
    transport, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "1.5"}, text="slow down"),
        httpx.Response(503, text="maintenance"),
        httpx.Response(200, json={"ok": True}),
    )
    sleeps: list[float] = []
    response = core_for(transport, sleeps).request("GET", "/things", operation="things.list")
    assert response.json() == {"ok": True}
    assert len(seen) == 3
    assert 1.5 <= sleeps[0] <= 1.52  # the server's hint plus at most one base delay of jitter
    assert 0 <= sleeps[1] <= 0.05  # no hint: exponential backoff with jitter, capped


def test_retries_are_bounded_and_the_last_error_names_system_operation_and_record():
    transport, seen = scripted(*[httpx.Response(502, text="bad gateway")] * 3)
    with pytest.raises(TransientError) as raised:
        core_for(transport, [], attempts=3).request("GET", "/x", operation="x.get", record="SO-1")
    assert len(seen) == 3
    assert str(raised.value).startswith("acme x.get [SO-1]: 502")


@pytest.mark.parametrize(
    ("status", "error"), [(400, RemoteValidationError), (401, AuthError), (404, NotFoundError)]
)
def test_permanent_errors_fail_fast(status, error):
    transport, seen = scripted(httpx.Response(status, text="nope"))
    with pytest.raises(error):
        core_for(transport, []).request("POST", "/x", operation="x.create", json={})
    assert len(seen) == 1


def test_a_write_that_may_have_landed_is_not_resent_blindly():
    transport, seen = scripted(httpx.ReadTimeout("timed out"))
    with pytest.raises(AmbiguousWriteError):
        core_for(transport, []).request("POST", "/orders", operation="orders.create", json={})
    assert len(seen) == 1


def test_connection_refused_and_idempotent_timeouts_are_retried():
    transport, seen = scripted(
        httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json={})
    )
    core_for(transport, []).request("PUT", "/orders/eid:1", operation="orders.upsert", json={})
    assert len(seen) == 3


def test_inspect_can_turn_a_2xx_into_a_retry():
    transport, seen = scripted(
        httpx.Response(200, json={"errors": [{"extensions": {"code": "THROTTLED"}}]}),
        httpx.Response(200, json={"data": {}}),
    )
    sleeps: list[float] = []

    def inspect(response: httpx.Response) -> None:
        if "errors" in response.json():
            raise TransientError("throttled", retry_after=0.2)

    core_for(transport, sleeps).request("POST", "/graphql", operation="q", json={}, inspect=inspect)
    assert len(seen) == 2 and sleeps and sleeps[0] >= 0.2


def test_retry_after_parses_seconds_and_http_dates():
    assert parse_retry_after("2.0") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_a_spurious_401_is_resent_a_bounded_number_of_times():
    transport, seen = scripted(httpx.Response(401, text="spurious"), httpx.Response(200, json={"ok": 1}))
    sleeps: list[float] = []
    core = core_for(transport, sleeps)
    core.auth_retries = 2
    assert core.request("POST", "/things", operation="things.create").json() == {"ok": 1}
    assert len(seen) == 2

    transport, seen = scripted(*[httpx.Response(401, text="revoked")] * 5)
    core = core_for(transport, sleeps)
    core.auth_retries = 2
    with pytest.raises(AuthError):
        core.request("GET", "/things", operation="things.list")
    assert len(seen) == 3  # one call plus two re-sends, then one clear error

    transport, seen = scripted(httpx.Response(403, text="forbidden"), httpx.Response(200))
    core = core_for(transport, sleeps)
    core.auth_retries = 2
    with pytest.raises(AuthError):
        core.request("GET", "/things", operation="things.list")
    assert len(seen) == 1  # a 403 is never spurious
