# One entry point for people and CI. `make test` creates the environment and runs every test.
SHELL := /bin/bash
STACK ?= dev
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: env test plan bench

env:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet 'uv>=0.5,<1'
	$(UV) sync --frozen --quiet --compile-bytecode

test: env
	$(UV) run --frozen pytest

plan: env
	$(UV) run --frozen python -m plan --stack $(STACK)

bench: env
	$(UV) run --frozen python -m bench
