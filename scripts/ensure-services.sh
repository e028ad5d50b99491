#!/usr/bin/env bash
# Start the services the test suite talks to, if they are down, and install the browser its UI test
# drives. Idempotent; never stops anything.
#   PostgreSQL 127.0.0.1:5432  dagster-postgres and ledger-on-PostgreSQL tests
#   RabbitMQ   127.0.0.1:5672  the Celery executor test (broker)
#   Redis      127.0.0.1:6379  the deployment-wide API limiter tests
#   Chromium + chromedriver    the headless-browser test of the Dagster UI
set -u

wait_for() {  # wait_for <description> <command...>: up to 30 s
  local what=$1; shift
  for _ in $(seq 1 30); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "warning: $what is not reachable; the tests that need it will fail" >&2
  return 1
}

ensure_postgres() {
  command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 && return 0
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | head -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  wait_for "PostgreSQL on 127.0.0.1:5432" pg_isready -q -h 127.0.0.1 -p 5432
}

ensure_rabbitmq() {
  command -v rabbitmqctl >/dev/null 2>&1 || { echo "warning: RabbitMQ is not installed" >&2; return 1; }
  rabbitmqctl -q status >/dev/null 2>&1 && return 0
  if [ -x /etc/init.d/rabbitmq-server ]; then
    /etc/init.d/rabbitmq-server start >/dev/null 2>&1 || (rabbitmq-server -detached >/dev/null 2>&1 || true)
  else
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for "RabbitMQ on 127.0.0.1:5672" rabbitmqctl -q await_startup
}

ensure_redis() {
  command -v redis-cli >/dev/null 2>&1 || { echo "warning: Redis is not installed" >&2; return 1; }
  redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && return 0
  if [ -x /etc/init.d/redis-server ]; then
    /etc/init.d/redis-server start >/dev/null 2>&1 || true
  else
    redis-server --daemonize yes >/dev/null 2>&1 || true
  fi
  wait_for "Redis on 127.0.0.1:6379" redis-cli -h 127.0.0.1 ping
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && \
           DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
      || echo "warning: could not install Chromium; the browser test will be skipped" >&2
  else
    echo "warning: Chromium/chromedriver missing and apt-get unavailable; the browser test will be skipped" >&2
  fi
}

ensure_postgres
ensure_rabbitmq
ensure_redis
ensure_chromium
exit 0
