# One entry point for people and CI. `make test` creates the environment and runs every test.
SHELL := /bin/bash
STACK ?= dev
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: env test plan bench patroni

env:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet 'uv>=0.5,<1'
	$(UV) sync --frozen --quiet --compile-bytecode

# The Patroni the integration tests run: the image's pinned, patched version, in a venv of the
# system python that the postgres user can execute. Needs root, python3-venv and patch.
PATRONI_VENV := /opt/hastack/patroni
PATRONI_SOURCES := components/docker/images/postgres
patroni:
	/usr/bin/python3 -m venv --clear $(PATRONI_VENV)
	$(PATRONI_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r $(PATRONI_SOURCES)/patroni-requirements.txt
	patch --quiet -p1 -d "$$($(PATRONI_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
		< $(PATRONI_SOURCES)/patroni-demote-once.patch

test: env
	$(UV) run --frozen pytest

plan: env
	$(UV) run --frozen python -m plan --stack $(STACK)

bench: env
	$(UV) run --frozen python -m bench
