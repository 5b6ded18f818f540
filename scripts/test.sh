#!/usr/bin/env bash
# Command 2: set up everything (Python packages; chromium, redis-server and rabbitmq-server
# from Debian; Cassandra, Kafka, Hazelcast and the Apicurio schema registry from Maven
# Central), start the services once, run every test, stop what this run started.
set -euo pipefail
cd "$(dirname "$0")/.."
started_at=$(date +%s)
bash scripts/setup.sh --browser --services
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p test-artifacts

started=()
cleanup() {
    for name in "${started[@]}"; do
        concursus-lab services stop "$name" || true
    done
}
trap cleanup EXIT
for name in cassandra kafka redis rabbitmq hazelcast registry; do
    concursus-lab services status "$name" --quiet || started+=("$name")
done
if [ ${#started[@]} -gt 0 ]; then
    concursus-lab services start "${started[@]}"  # side by side; waits until all answer
fi

echo "== ruff"
ruff check .
echo "== the layer contract (pyproject.toml: arrows point one way)"
lint-imports
echo "== pytest: unit, integration (real Cassandra, Kafka, Redis, RabbitMQ, Hazelcast, schema registry, Spark), browser, doctests"
# exit code 5 (no tests collected) fails here like any other failure
pytest --doctest-modules concursus_lab tests -p no:cacheprovider --ignore=tests/faults \
    --junitxml=test-artifacts/junit.xml "$@"
echo "== fault suite: servers killed mid-read, appenders killed, two appenders, damaged files"
# its own Kafka, Cassandra and Redis on free ports (tests/faults/conftest.py); ends with one line
pytest tests/faults -p no:cacheprovider --junitxml=test-artifacts/faults.xml
echo "== notebooks, strict, by the same command users run in their CI"
concursus-lab check notebooks/ --artifacts test-artifacts/notebooks -- --junitxml=test-artifacts/notebooks.xml
echo "== benchmarks, quick mode (a smoke test: they run; speed is not judged here)"
python -m bench --quick --out test-artifacts/benchmarks-quick.md
echo "== all tests passed in $(( $(date +%s) - started_at )) s"
