#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with concursus-lab and every extra installed.
# Usage: scripts/setup.sh [--browser] [--services]
#   --browser also installs Debian's chromium and chromium-driver; --services Debian's redis-server and
#   rabbitmq-server (which `concursus-lab services start` runs; Cassandra and Kafka come from
#   Maven)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
    echo "setup: installing concursus-lab with its extras into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[all,test]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi

debian=()
for arg in "$@"; do
    case "$arg" in
        --browser)
            [ -x /usr/bin/chromium ] || debian+=(chromium)
            [ -x /usr/bin/chromedriver ] || debian+=(chromium-driver) ;;
        --services)
            [ -x /usr/bin/redis-server ] || debian+=(redis-server)
            [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || debian+=(rabbitmq-server) ;;
        *) echo "setup: unknown option $arg (use --browser, --services)" >&2; exit 2 ;;
    esac
done
if [ ${#debian[@]} -gt 0 ]; then
    echo "setup: installing Debian's ${debian[*]} (browser tests, local Redis and RabbitMQ)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${debian[@]}" >/dev/null
fi

for tool in java mvn; do
    command -v "$tool" >/dev/null || echo "setup: warning: '$tool' not found; Cassandra and Kafka need Java 17 and Maven" >&2
done
