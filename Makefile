# cardbot: `make run` (the bot on this machine) and `make test` (everything CI checks).
SHELL := /bin/bash
.DEFAULT_GOAL := help
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
export AWS_REGION ?= us-east-1

.PHONY: help run test lint build deploy bench fmt clippy tools

help:
	@echo "make run    - the whole bot on this machine (DynamoDB Local, Feishu simulator, three functions)"
	@echo "make test   - every test: unit, DynamoDB Local, simulator, end-to-end"
	@echo "make lint   - cargo fmt --check, clippy, template lint"
	@echo "make build  - sam build (release bootstraps for Lambda)"
	@echo "make deploy - sam deploy --guided"
	@echo "make bench  - benchmarks, written to bench/results.json"

run:
	@echo "make run is not ready yet: the local-run issue brings it. Until then: make test."

# One DynamoDB Local for the whole run (nextest runs each test in its own process); always stopped.
test:
	@set -euo pipefail; \
	eval "$$(scripts/dynamodb-local.sh start)"; \
	trap 'scripts/dynamodb-local.sh stop "$$CARDBOT_DYNAMODB_PID"' EXIT; \
	if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

lint: fmt clippy
