"""Process counters: HttpCore's hook counts calls, errors, retries and latency; cost points add up; and
a count made in another process (a Dagster run worker) reaches this process's scrape."""

import os
import subprocess
import sys
import uuid

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from mienne_ops.errors import TransientError
from mienne_ops.integrations.http import CallStats, HttpCore, RetryPolicy
from mienne_ops.observability.process_metrics import ENV, error_kind, multiproc_dir
from mienne_ops_tests.observability.scrape import parse, value


def scrape_files() -> dict:
    """What ``/metrics`` sums: every process's files in the shared directory."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc_dir()))
    return parse(generate_latest(registry).decode())


def unique_system() -> str:
    """A system label no other test uses, so counts here start at zero whatever ran before."""
    return f"test{uuid.uuid4().hex[:10]}"


def core(system: str, answers: list) -> HttpCore:
    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={})

    return HttpCore(
        system=system,
        base_url="http://vendor.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=3, base_delay=0.0),
        stats=CallStats(),
        sleep=lambda _: None,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, None), (302, None), (404, "client"), (422, "client"), (401, "auth"), (403, "auth"),
     (429, "throttled"), (408, "server"), (500, "server"), (503, "server"), (None, "network")],
)  # fmt: skip
def test_error_kinds(status, kind):
    assert error_kind(status) == kind


def test_a_retried_call_counts_two_calls_one_server_error_one_retry_and_two_latencies():
    system = unique_system()
    with core(system, [503, 200]) as client:
        assert client.request("GET", "/thing", operation="thing.get").status_code == 200
    samples = scrape_files()
    assert value(samples, "mienne_ops_api_calls_total", system=system) == 2
    assert value(samples, "mienne_ops_api_errors_total", system=system, kind="server") == 1
    assert value(samples, "mienne_ops_api_errors_total", system=system) == 1
    assert value(samples, "mienne_ops_api_retries_total", system=system) == 1
    assert value(samples, "mienne_ops_api_request_duration_seconds_count", system=system) == 2
    assert value(samples, "mienne_ops_api_request_duration_seconds_bucket", system=system, le="+Inf") == 2


def test_a_call_without_answer_is_a_network_error():
    system = unique_system()
    failures = [httpx.ConnectError("refused")] * 3
    with core(system, failures) as client, pytest.raises(TransientError):
        client.request("GET", "/thing", operation="thing.get")
    samples = scrape_files()
    assert value(samples, "mienne_ops_api_calls_total", system=system) == 3
    assert value(samples, "mienne_ops_api_errors_total", system=system, kind="network") == 3
    assert value(samples, "mienne_ops_api_retries_total", system=system) == 2


def test_cost_points_add_up_per_system_and_other_units_are_not_cost():
    system = unique_system()
    stats = CallStats()
    stats.add_units(f"{system}:cost", 12.5)
    stats.add_units(f"{system}:cost", 7.5)
    stats.add_units(f"{system}:rows", 1000)
    assert value(scrape_files(), "mienne_ops_api_cost_points_total", system=system) == 20


def test_a_count_made_in_another_process_reaches_the_scrape():
    """The reason for multiprocess mode: run workers are other processes, and they exit."""
    system = unique_system()
    code = (
        "from mienne_ops.observability.process_metrics import observe_call\n"
        f"for _ in range(3): observe_call({system!r}, 200, 0.02)\n"
        f"observe_call({system!r}, 429, 0.01)\n"
    )
    env = {**os.environ, ENV: str(multiproc_dir())}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    samples = scrape_files()
    assert value(samples, "mienne_ops_api_calls_total", system=system) == 4
    assert value(samples, "mienne_ops_api_errors_total", system=system, kind="throttled") == 1
