# 助企帮帮团 virtual specialist. `make help` lists the targets.
VENV    ?= .venv
PY      := $(VENV)/bin/python
RASA    := $(VENV)/bin/rasa
MODEL   := models/zhuqi.tar.gz
export TF_CPP_MIN_LOG_LEVEL ?= 2
export RASA_TELEMETRY_ENABLED ?= false
export PYTHONPATH := $(CURDIR)

.PHONY: help setup system-packages venv widget console ratings kb kb-validate kb-check train run staff shell test test-unit test-dialogue evaluate bench-nlu bench-answers up-prod down-prod status-prod roll-prod bench-lock bench-replica bench-hardening bench-prod insight retrain clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: system-packages venv widget console kb train ## fresh machine: system packages, Python 3.10 venv from pinned versions, widget, console charts, kb files, model

system-packages: ## Debian packages from system-packages.txt (as root; otherwise says what to install)
	scripts/install_system_packages.sh

venv: $(VENV)/.installed ## the virtual environment, from requirements.lock

$(VENV)/.installed: requirements.lock
	@test -x $(PY) || "$$(scripts/find_python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip check
	touch $@

widget: widget/node_modules/.package-lock.json ## the widget's socket.io browser client (npm, from widget/package-lock.json)

widget/node_modules/.package-lock.json: widget/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the web widget (Debian: apt-get install npm)"; exit 1; }
	cd widget && npm ci --no-audit --no-fund --silent

console: console/node_modules/.package-lock.json ## the staff console's charts (ECharts, npm, from console/package-lock.json)

console/node_modules/.package-lock.json: console/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the console's charts (Debian: apt-get install npm)"; exit 1; }
	cd console && npm ci --no-audit --no-fund --silent

kb-validate: venv ## check kb/: schema, references, every quote found in its source
	$(PY) scripts/validate_kb.py

kb: venv ## validate kb/ and regenerate lookups, synonyms, jieba dictionary and topic rules
	$(PY) scripts/build_kb.py

kb-check: venv ## fail when a file derived from kb/ is out of date (CI)
	$(PY) scripts/build_kb.py --check

train: venv ## train the model into models/zhuqi.tar.gz (no-op when nothing changed)
	$(RASA) train --fixed-model-name zhuqi --out models

run: ## the assistant (REST, socket.io, HTTP API on :5005), widget demo (:8080), staff console (:8090)
	scripts/run.sh

staff: venv ## create a console account: make staff ACCOUNT=zhang ROLE=specialist DEPT=scjg NAME=张三
	$(PY) -m console.accounts add "$(ACCOUNT)" --role "$(ROLE)" $(if $(DEPT),--department "$(DEPT)") $(if $(NAME),--name "$(NAME)")

up-prod: venv ## production topology here: PostgreSQL, Redis, 2 action servers, 2 Rasa replicas, console, nginx on :8000 (needs RASA_AUTH_TOKEN)
	$(PY) -m production.cluster up

down-prod: venv ## stop exactly what make up-prod started
	$(PY) -m production.cluster down

status-prod: venv ## which parts of the production topology run
	$(PY) -m production.cluster status

roll-prod: venv ## restart the Rasa replicas one at a time (a code deploy without downtime)
	$(PY) -m production.cluster roll

shell: ## chat with the assistant in the terminal
	scripts/run.sh shell

# test-unit last, so that pytest's summary is the last line `make test` prints.
test: kb-check train test-dialogue test-unit ## everything: kb, actions, components, NLU floor, stories, REST

test-unit: venv ## pytest: kb, actions, components, held-out NLU floor, REST end to end
	$(PY) -m pytest

test-dialogue: venv ## rasa data validate and the conversation tests in tests/test_stories.yml
	$(RASA) data validate
	$(RASA) test core --model $(MODEL) --stories tests/test_stories.yml --fail-on-prediction-errors --out reports/stories

insight: venv ## sync turns from the tracker store, print the report tables as CSV (FROM= TO= DEPT= CHANNEL= TABLE=)
	$(PY) scripts/insight.py $(if $(FROM),--from "$(FROM)") $(if $(TO),--to "$(TO)") $(if $(DEPT),--department "$(DEPT)") $(if $(CHANNEL),--channel "$(CHANNEL)") $(if $(TABLE),--table "$(TABLE)")

retrain: venv ## train on data/nlu/reviewed.yml at low priority; publish only past the NLU floors (RASA_URL= for make run)
	$(PY) scripts/retrain.py $(if $(RASA_URL),--rasa-url $(RASA_URL))

ratings: venv ## count the widget's 好差评 ratings per department and topic
	$(PY) scripts/ratings.py

evaluate: venv ## NLU report on the held-out set: per-intent P/R, confusion PNG, routing accuracy
	$(PY) scripts/evaluate.py --model $(MODEL) --out reports/nlu

bench-nlu: venv ## robustness benchmark (tests/nlu/bench.yml) side by side with BM25 search
	$(PY) scripts/bench_nlu.py --model $(MODEL) --out reports/bench

bench-answers: venv ## answer benchmark (tests/answers/bench.yml): facts users see, vs a search box over the seeds
	$(PY) scripts/bench_answers.py --model $(MODEL) --out reports/answers $(if $(SPLIT),--split $(SPLIT))

bench-lock: venv ## the conversation lock under several replicas: none, Rasa's RedisLockStore, AtomicRedisLockStore
	$(PY) scripts/bench_lock.py

bench-replica: venv ## one replica beside a bare `rasa init` bot, interleaved: throughput, p95, long conversations
	$(PY) scripts/bench_replica.py --out reports/replica

bench-hardening: venv ## the input bound, floods, ratings, cases, a frozen and a killed action server, on `make run` (~5 min)
	$(PY) scripts/bench_hardening.py --out reports/hardening

bench-prod: venv ## the production topology under load and faults, through nginx (needs RASA_AUTH_TOKEN; ~30 min)
	$(PY) scripts/bench_prod.py all --json reports/prod/bench_prod.json

clean: ## remove models, reports and the local tracker database
	rm -rf models/*.tar.gz reports tracker.db .pytest_cache
