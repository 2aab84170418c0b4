# `make demo` and `make test` each do the whole set-up on a fresh Debian machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# Downloads (busybox debs, Debian rootfs tarballs) outlive a checkout when root: the same
# machine's next clone reuses them instead of fetching and bootstrapping again.
CACHE ?= $(if $(filter 0,$(shell id -u)),/var/cache/bale-dev,$(CURDIR)/.cache)
export CACHE
export BALE_FIXTURES := $(CACHE)/busybox

BALE := $(VENV)/bin/bale
PLATFORMS ?= linux/amd64,linux/arm64

.PHONY: all setup host venv fixtures lint unit test demo bench fuzz clean \
	examples example-hello example-cross-compile example-jinja example-python-app python-base

all: test

host:
	./scripts/setup-host.sh

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m compileall -q src >/dev/null  # start-up time is part of every build
	touch $@

venv: $(VENV)/.installed

fixtures: host
	./scripts/fetch-fixtures.sh $(CACHE)/debs

setup: host venv fixtures

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks fuzz
	$(VENV)/bin/ruff format --check src tests benchmarks fuzz
	$(VENV)/bin/mypy

# The tests that need neither root nor more than a few seconds: any user, any machine.
unit: venv
	$(VENV)/bin/pytest -q -m "not root and not slow"

test: setup lint
	$(VENV)/bin/pytest -q

demo: setup
	./scripts/demo.sh

examples: example-hello example-cross-compile example-jinja example-python-app

example-hello: setup
	./scripts/example-context.sh examples/hello
	$(BALE) build --platform $(PLATFORMS) -t bale-examples/hello:1 examples/hello
	$(BALE) images --tree bale-examples/hello:1

example-cross-compile: setup
	./scripts/example-context.sh examples/cross-compile
	$(BALE) build --platform $(PLATFORMS) -t bale-examples/cross-compile:1 examples/cross-compile
	$(BALE) images --tree bale-examples/cross-compile:1

example-jinja: setup
	./scripts/example-context.sh examples/jinja
	$(BALE) build -f examples/jinja/Dockerfile.j2 --platform linux/amd64,linux/arm/v7 \
		--build-arg CHANNEL=beta -t bale-examples/jinja:1 examples/jinja
	$(BALE) images --tree bale-examples/jinja:1

python-base: setup
	./scripts/python-base.sh

example-python-app: python-base
	$(BALE) build --platform $(PLATFORMS) -t bale-examples/python-app:1 examples/python-app
	$(BALE) images --tree bale-examples/python-app:1

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

# The long adversarial runs (docs/fuzzing.md); `make test` runs short ones. FUZZ_SEED=N
# repeats a run; by default each suite draws a seed and prints it.
FUZZ_SEED ?=
FUZZ_ARGS = $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))
fuzz: setup
	$(PY) -m fuzz.dockerfile_fuzz --cases 100000 $(FUZZ_ARGS)
	$(PY) -m fuzz.cli_fuzz --cases 10000 $(FUZZ_ARGS)
	$(PY) -m fuzz.killloop --kills 200 $(FUZZ_ARGS)
	$(PY) -m fuzz.concurrency --rounds 20 $(FUZZ_ARGS)
	$(PY) -m fuzz.secrets_scan

clean:
	rm -rf $(VENV) $(CACHE) .mypy_cache .pytest_cache .ruff_cache
