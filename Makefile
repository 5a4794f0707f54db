# One entry point for people and CI. `make rehearse` runs the whole flow on this
# machine (no AWS account, no Docker); `make test` is the quality gate.
SHELL := /bin/bash
# The Python versions the pins are installed and tested on (README: "Two commands"). The first
# of them found on PATH (pyenv shims included) makes .venv; PYTHON=/path/to/python overrides.
TESTED_PYTHONS := 3.11 3.12 3.13
empty :=
space := $(empty) $(empty)
PYTHON ?= $(firstword $(foreach v,$(TESTED_PYTHONS),$(shell \
  python$(v) -c 'import sys; print(sys.executable)' 2>/dev/null)))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov lives in its own virtualenv: its dependency pins conflict with the project's boto3.
CHECKOV_VENV := .checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20
# Disk a fresh clone's `make test` took at its peak, in MB (2026-12-06): .venv 7.1 GB (torch's
# CUDA libraries and triton 4.1 GB of it), .checkov-venv 0.3 GB, the tests' temp files 1 GB.
# Checked before a new .venv is made, so a full disk stops the build with the figures instead
# of an OSError half-way through pip. NEEDS_DISK_MB=0 skips the check.
NEEDS_DISK_MB ?= 8600

.PHONY: venv python-check disk-check rehearse test test-fast lint pytest synth cfn-lint checkov hadolint yamllint benchmarks clean

venv: $(STAMP) node_modules/.package-lock.json

$(STAMP): requirements.txt requirements-dev.txt training_image/requirements.txt training_image/requirements-nodeps.txt pyproject.toml
	test -x $(PY) || { $(MAKE) --no-print-directory -s python-check disk-check && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r training_image/requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
	  && printf '%s\n' "$(CURDIR)/lambdas" "$(CURDIR)/training_image" > "$$site/detrain-source-paths.pth"
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

## One line that names the versions that work when no tested Python is found (or PYTHON is off).
python-check:
	@found=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	case " $(TESTED_PYTHONS) " in *" $$found "*) ;; *) \
	  echo "make: needs Python $(subst $(space), or ,$(TESTED_PYTHONS)) (the versions the pins are tested on), found" \
	    "$${found:-none} at PYTHON='$(PYTHON)'; install one (e.g. 'pyenv install 3.11')" \
	    "or pass PYTHON=/path/to/python3.11" >&2; exit 1;; esac

## One line with the free and the needed disk, when the repository's filesystem has too little.
disk-check:
	@free=$$(df -Pk . | awk 'NR == 2 {print int($$4 / 1024)}'); \
	if [ "$$free" -lt "$(NEEDS_DISK_MB)" ]; then \
	  echo "make: a new $(VENV) and the gate need about $(NEEDS_DISK_MB) MB of disk (torch's CUDA" \
	    "libraries most of it), found $$free MB free on $$(df -P . | awk 'NR == 2 {print $$6}');" \
	    "free some space, or pass NEEDS_DISK_MB=0 to try anyway" >&2; exit 1; fi

## The README's main command: the whole upload -> launch -> train flow, locally.
rehearse: venv
	$(VENV)/bin/detrain rehearse

## The README's test command: every check CI runs.
test: venv lint pytest synth cfn-lint checkov hadolint yamllint

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## pytest-xdist runs a worker per core (at most 4: each worker trains its own session
## fixtures), each torch with one thread. With torch's default, a thread per core, two workers
## spin against each other: on 2 cores the suite took 520 s that way, 291 s with one thread each,
## 550 s serially (benchmarks/bench_gate.py; docs/performance.md, "The gate's time").
## PYTEST_WORKERS=0 runs it serially.
PYTEST_WORKERS ?= auto
PYTEST := OMP_NUM_THREADS=1 $(VENV)/bin/pytest --numprocesses $(PYTEST_WORKERS) --maxprocesses 4

pytest: $(STAMP)
	$(PYTEST)

## The inner loop: ruff, then the tests not marked slow (no model trained, no whole flow).
## Not a gate: CI runs `make test`.
test-fast: lint
	$(PYTEST) -m "not slow"

synth: venv
	rm -rf cdk.out
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk synth --quiet

cfn-lint: synth
	$(VENV)/bin/cfn-lint --config-file .cfnlintrc.yaml -- cdk.out/*.template.json

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || { $(MAKE) --no-print-directory -s python-check && $(PYTHON) -m venv $(CHECKOV_VENV); }
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-checkov.txt
	touch $@

## Fails on any failed check that is not skipped, with its reason, in infra/ (infra/checkov_skips.py).
checkov: synth $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --framework cloudformation --compact --quiet --skip-download \
	  $$(printf -- '-f %s ' cdk.out/*.template.json)

hadolint: $(STAMP)
	$(VENV)/bin/hadolint training_image/Dockerfile

yamllint: $(STAMP)
	$(VENV)/bin/yamllint --strict training_image/buildspec.yml .cfnlintrc.yaml

benchmarks: venv
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out .rehearsal .local-runs .pytest_cache .ruff_cache
