# cardbot: `make run` (the bot on this machine) and `make test` (everything CI checks).
SHELL := /bin/bash
.DEFAULT_GOAL := help
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
export AWS_REGION ?= us-east-1

.PHONY: help run deploy-local test lint build deploy update logs bench fmt clippy tools lint-template screenshot prereqs

help:
	@echo "make run    - the whole bot on this machine (DynamoDB Local, Feishu simulator, three functions)"
	@echo "make deploy-local - sam deploy of template.yaml to a local AWS emulator (no Docker, no account), with the simulator"
	@echo "make test   - every test: unit, DynamoDB Local, simulator, end-to-end, the template deployed to a local AWS emulator"
	@echo "make lint   - cargo fmt --check, clippy, template lint"
	@echo "make build  - sam build (release bootstraps for Lambda)"
	@echo "make deploy - sam deploy --guided (first deploy; its questions and answers: README, Deploy)"
	@echo "               (arm64: make deploy ARCH=arm64, after rustup target add aarch64-unknown-linux-gnu; kept afterwards)"
	@echo "make update - build and deploy again with the saved answers (no questions), same architecture"
	@echo "make logs   - tail the functions' logs (one: make logs FUNCTION=CardUpdaterFunction)"
	@echo "make bench  - benchmarks, written to bench/results.json"
	@echo "make screenshot - the playground page with the approval card, from its browser test (docs/playground.png)"

# The runner installs cargo-lambda and DynamoDB Local when missing, builds and starts everything, plays
# a demo through the Feishu simulator and serves until Ctrl-C (settings: docs/local-development.md).
run: prereqs
	@echo "==> building the local stack runner (cargo run --bin cardbot-local)"
	@cargo run --bin cardbot-local

# The real template deployed with sam deploy to a local AWS emulator (ministack, in .tools/ministack),
# the functions built for this machine, the Feishu simulator as their Feishu; serves until Ctrl-C and
# then stops everything it started (docs/deploy-local.md).
deploy-local: prereqs
	@echo "==> building the local deploy runner (cargo run --bin cardbot-deploy-local)"
	@cargo run --bin cardbot-deploy-local

# One DynamoDB Local and one local AWS emulator (its Secrets Manager) for the whole run (nextest runs each test in its
# own process); always stopped. The whole workspace: the bench crate's own tests (the cost model, and a
# small run of the calls section on DynamoDB Local) run here; its criterion benches only under make bench.
# The system tools make run / make test cannot install themselves, named with their packages.
prereqs:
	@scripts/check-prereqs.sh $(firstword $(filter run deploy-local test,$(MAKECMDGOALS)) run)

# nextest runs no doctests: the poll bot's Lambda binary (its README) is compiled by `cargo test --doc`.
test: prereqs
	@set -euo pipefail; \
	scripts/ensure-chromium.sh; \
	eval "$$(scripts/dynamodb-local.sh start)"; \
	trap 'scripts/dynamodb-local.sh stop "$$CARDBOT_DYNAMODB_PID"' EXIT; \
	eval "$$(scripts/aws-emulator.sh start)"; \
	trap 'scripts/dynamodb-local.sh stop "$$CARDBOT_DYNAMODB_PID"; scripts/aws-emulator.sh stop "$$CARDBOT_AWS_EMULATOR_PID"' EXIT; \
	if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
		cargo test --doc -p poll-bot; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# --- build, deploy, template lint: tools come from .tools/venv (scripts/ensure-tools.sh) ---
# ARCH given, else the architecture the last guided deploy saved in samconfig.toml, else x86_64.
ARCH := $(shell ARCH=$(ARCH) scripts/arch.sh)
SAM_PARAMS := $(if $(filter-out x86_64,$(ARCH)),--parameter-overrides Architecture=$(ARCH))
# sam must never phone home from CI or a machine without network
SAM := SAM_CLI_TELEMETRY=0 sam
# Deploy with the user's own AWS credentials and region, not the test defaults exported above.
DEPLOY_ENV := env $(if $(filter file,$(origin AWS_ACCESS_KEY_ID)),-u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY) \
	$(if $(filter file,$(origin AWS_REGION)),-u AWS_REGION)

tools:
	@scripts/ensure-tools.sh >/dev/null

build:
	@PATH="$$(scripts/ensure-tools.sh sam cargo-lambda python-zig):$$PATH" $(SAM) build $(SAM_PARAMS)

deploy: build
	@PATH="$$(scripts/ensure-tools.sh sam):$$PATH" $(DEPLOY_ENV) $(SAM) deploy --guided $(SAM_PARAMS)

# The answers the guided deploy saved in samconfig.toml (the architecture among them); the secret
# parameters keep their deployed values. Shows the change set and asks before applying it.
update: build
	@PATH="$$(scripts/ensure-tools.sh sam):$$PATH" $(DEPLOY_ENV) $(SAM) deploy

logs:
	@PATH="$$(scripts/ensure-tools.sh sam):$$PATH" $(DEPLOY_ENV) $(SAM) logs --tail $(if $(FUNCTION),--name $(FUNCTION))

# Offline: cfn-lint ships the resource specs; sam validate --lint runs cfn-lint on the SAM transform.
lint-template:
	@PATH="$$(scripts/ensure-tools.sh sam cfn-lint):$$PATH"; \
		cfn-lint template.yaml && $(SAM) validate --lint --template template.yaml

lint: fmt clippy lint-template

# The README's picture of the playground: the browser test's own page, saved as it runs.
screenshot:
	@set -euo pipefail; \
	scripts/ensure-chromium.sh; \
	eval "$$(scripts/dynamodb-local.sh start)"; \
	trap 'scripts/dynamodb-local.sh stop "$$CARDBOT_DYNAMODB_PID"' EXIT; \
	mkdir -p docs; \
	CARDBOT_SCREENSHOT="$$PWD/docs/playground.png" cargo test -p cardbot-tests --test playground \
		a_person_asks_clicks_and_sees_the_card_approved_and_hostile_text_stays_text -- --exact

# Hot path (criterion), peers (lark-oapi, node-sdk), cold starts, round trips, latency: see bench/README.md.
bench:
	@bench/run.sh
