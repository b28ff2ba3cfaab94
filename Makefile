# One chat protocol, three implementations. `make help` lists what you can do.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help install system-packages run run-fastapi run-channels run-websockets run-cluster chat test pitfalls bench-smoke stress client-test test-running exercise exercise-check docs autobahn bench-quick bench bench-ui lint format clean

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
IMPL ?=
PORT ?=
PYTEST_ARGS ?=
WORKERS ?=
N ?=
NAME ?=
ROOM ?= lobby
# The chapters whose own tests `make test` runs (after chatcore's, chapter 0's with its pitfalls, and the
# docs'); IMPL=<name> runs only that chapter's.
CHAPTERS := 01_fastapi 02_channels 03_websockets
CHAPTER_fastapi := 01_fastapi
CHAPTER_channels := 02_channels
CHAPTER_websockets := 03_websockets
# Debian packages the course needs on the machine: installed by `make install` when missing.
# redis-server: the scale-out tests start their own, on a free port. chromium: the page's browser tests
# (tests/test_02_page.py), driven by Playwright. Node.js runs the client's unit tests (any >= 18) and pitfall 10's
# clients (20.10 or later: they use its WebSocket): Debian's nodejs when the machine has no `node` at all.
# curl: the primer's first command (00_protocol/PRIMER.md).
APT_PACKAGES := redis-server chromium
CLIENT_TESTS := shared_client/tests/*.test.js

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'
	@echo
	@echo "  Variables: IMPL=fastapi|channels|websockets (test one implementation), PORT=9000 (run on another port),"
	@echo "             NAME=alice ROOM=lobby (chat), N=1 (exercise), WORKERS=2 (run-cluster),"
	@echo "             CHAT_SERVER_URL=http://host:port (test-running),"
	@echo "             any CHAT_* setting (see SPEC.md §16)."

install: system-packages $(STAMP) ## Create .venv with the pinned Python packages (and Debian packages when missing)

system-packages: # checked on every install (it is quick), so a package added here reaches existing checkouts
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

$(STAMP): requirements.txt | system-packages
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@# Make `import chatcore` work from every chapter, script and test without packaging the repo.
	$(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "chatcourse.pth").write_text("$(CURDIR)\n")'
	touch $@

run: run-fastapi ## Run chapter 1 (FastAPI) on http://127.0.0.1:8001

run-fastapi: install ## Chapter 1: FastAPI + uvicorn on 127.0.0.1:8001 (PORT= overrides)
	CHAT_PORT=$(or $(PORT),8001) $(PY) 01_fastapi/server.py

run-channels: install ## Chapter 2: Django Channels + daphne on 127.0.0.1:8002 (PORT= overrides)
	CHAT_PORT=$(or $(PORT),8002) $(PY) 02_channels/server.py

run-websockets: install ## Chapter 3: the websockets library on 127.0.0.1:8003 (PORT= overrides)
	CHAT_PORT=$(or $(PORT),8003) $(PY) 03_websockets/server.py

run-cluster: install ## One chapter as WORKERS processes on a redis-server of their own: IMPL=channels WORKERS=2 (PORT=8101)
	@test -n "$(IMPL)" || { echo 'Say which chapter: make run-cluster IMPL=fastapi|channels|websockets WORKERS=2'; exit 2; }
	$(PY) -m tests.cluster $(IMPL) $(or $(WORKERS),2) $(or $(PORT),8101)

chat: install ## Chapter 0: chat from the terminal with a running server: NAME=alice ROOM=lobby PORT=8001
	$(PY) 00_protocol/chat.py --url http://127.0.0.1:$(or $(PORT),8001) --room $(ROOM) $(if $(NAME),--user $(NAME))

test: install ## Run every test: chatcore's, chapter 0's with the primer and the pitfalls, the docs', each chapter's own, the client's, then the conformance suite (IMPL= for one)
	@# Exit status 5 means PYTEST_ARGS (say -k resume) selected none of a folder's tests: not a failure.
	@for folder in chatcore 00_protocol docs $(if $(IMPL),$(CHAPTER_$(IMPL)),$(CHAPTERS)); do \
		echo "$(PY) -m pytest $$folder $(PYTEST_ARGS)"; $(PY) -m pytest $$folder $(PYTEST_ARGS); \
		status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ] || exit $$status; \
	done
	node --test $(CLIENT_TESTS)
	$(PY) -m pytest tests $(if $(IMPL),--impl=$(IMPL)) $(PYTEST_ARGS)

pitfalls: install ## The classic WebSocket mistakes, shown failing on the naive servers and handled by each chapter, then one table (about 2 minutes)
	$(PY) -m pytest 00_protocol/pitfalls -q $(PYTEST_ARGS)

stress: install ## SPEC.md §19 at full size against every chapter, memory and Redis (about 30 minutes; IMPL= for one)
	$(PY) -m pytest tests/test_19_load.py --stress --timeout=900 $(if $(IMPL),--impl=$(IMPL)) $(PYTEST_ARGS)

client-test: install ## The shared client's tests: its logic under node, then the page in Chromium against each chapter
	node --test $(CLIENT_TESTS)
	$(PY) -m pytest tests/test_02_page.py $(if $(IMPL),--impl=$(IMPL)) $(PYTEST_ARGS)

test-running: install ## Run the conformance suite against a running server: CHAT_SERVER_URL=http://host:port
	@test -n "$$CHAT_SERVER_URL" || { echo 'Set CHAT_SERVER_URL, e.g. CHAT_SERVER_URL=http://127.0.0.1:8001 make test-running'; exit 2; }
	$(PY) -m pytest tests $(PYTEST_ARGS)

exercise: install ## Check your solution of exercise N (exercises/README.md): N=1 (IMPL= tries another chapter)
	@test -n "$(N)" || { echo 'Say which exercise: make exercise N=1 (exercises/README.md lists them)'; exit 2; }
	@CHAT_SERVER_URL= $(PY) -m pytest tests/exercises --exercise=$(N) $(if $(IMPL),--impl=$(IMPL)) $(PYTEST_ARGS) || { status=$$?; \
		[ $$status -ne 1 ] || echo -e "\nExercise $(N) is not solved yet: the failures above say what the server did instead.\nThe task: exercises/README.md. One solution: exercises/solutions/$(N)-*.patch"; exit $$status; }

exercise-check: install ## Check the exercises themselves: each one's tests fail here and pass with its solution
	$(PY) exercises/check.py

docs: install ## Point the Markdown files' code excerpts at their lines again, and regenerate generated tables
	$(PY) docs/snippets.py --fix

autobahn: install ## RFC 6455 conformance: the Autobahn TestSuite's cases (kosoku) against each chapter's /ws/echo, writes docs/autobahn.md (about 2 min; IMPL= for one)
	$(PY) docs/autobahn/run.py $(if $(IMPL),--stack $(IMPL))

bench-smoke: install ## The benchmarks' own tests: each user and scenario, small, and the capacity generator against every server (about 2 minutes)
	$(PY) -m pytest benchmarks $(PYTEST_ARGS)

bench-quick: install ## Benchmarks, every scenario, small (about 12 minutes): benchmarks/results/<date>-quick/REPORT.md
	$(PY) benchmarks/run.py quick $(if $(IMPL),--only=$(IMPL))

bench: install ## Benchmarks, every scenario, full size, 3 interleaved runs (about an hour): benchmarks/results/<date>/REPORT.md
	$(PY) benchmarks/run.py full $(if $(IMPL),--only=$(IMPL))

bench-ui: install ## Locust's web UI against one server with the benchmark settings: IMPL=fastapi (or channels+redis, reference)
	@test -n "$(IMPL)" || { echo 'Say which server: make bench-ui IMPL=fastapi|channels|websockets[+redis]|reference'; exit 2; }
	$(PY) benchmarks/ui.py $(IMPL)

lint: install ## ruff (lint and format check) and mypy (strict) on the core, the chapters and the tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy chatcore tests docs exercises 00_protocol
	$(VENV)/bin/mypy 01_fastapi
	MYPYPATH=02_channels $(VENV)/bin/mypy 02_channels
	$(VENV)/bin/mypy 03_websockets
	MYPYPATH=benchmarks $(VENV)/bin/mypy benchmarks
	for file in shared_client/*.js $(CLIENT_TESTS) 00_protocol/pitfalls/*.js 00_protocol/pitfalls/*.mjs; do node --check "$$file" || exit 1; done

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
