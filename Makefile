# The two commands of the README. Everything else is in scripts/.
.PHONY: lab test setup bench
lab:            ## set everything up, then JupyterLab on notebooks/ with the sample store
	@bash scripts/lab.sh
test:           ## set everything up, start Cassandra, Kafka, Redis, RabbitMQ, Hazelcast, the registry, run every test
	@bash scripts/test.sh
setup:          ## only set up the Python environment (.venv)
	@bash scripts/setup.sh
bench:          ## every benchmark; writes docs/benchmarks.md (needs the services running)
	@bash scripts/setup.sh && .venv/bin/python -m bench
