# PatternAlarm front door: the same commands for people, tests and CI.
# Configuration: environment variables, documented in docs/configuration.md.
SHELL := /bin/bash
PY := python3
STACK := $(PY) -m patternalarm.stack
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH),)
STREAMING_PY = $$($(PY) scripts/envs.py python streaming)
AIRFLOW_PY = $$($(PY) scripts/envs.py python airflow)

.PHONY: help setup up down status urls demo test test-unit replay generate evaluate analyst train retrain backtest prune-history

help: ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## install what is missing: Debian packages, virtualenvs, jars (seconds when done before)
	@bash scripts/system_packages.sh
	@$(STACK) setup

up: setup ## start the stack (SERVICES="postgres kafka ..." for a subset) and wait until healthy
	@$(STACK) up $(SERVICES)

down: ## stop the stack (PostgreSQL too with PA_STOP_POSTGRES=1)
	@$(STACK) down $(SERVICES)

status: ## health of every service, with the log to read when one is down
	@$(STACK) status

urls: ## where the UIs are
	@$(STACK) urls

demo: setup ## the main job and the loop: NORMAL traffic, live numbers, simulated analyst, retrain; until Ctrl-C (DURATION=60s MODE=NORMAL RETRAIN=1)
	@$(STACK) demo

test: setup ## every test, against real services that it starts
	@bash scripts/run_tests.sh

replay: ## publish a JSONL file of events: make replay FILE=events.jsonl [RATE=events_per_min]
	@test -n "$(FILE)" || { echo "usage: make replay FILE=events.jsonl [RATE=events_per_min]"; exit 2; }
	@$(STREAMING_PY) -m streaming.replay "$(FILE)" $(if $(RATE),--rate $(RATE),)

analyst: ## a simulated analyst judging incidents from ground truth until Ctrl-C [ARGS="--once --delay 0"]
	@$(STREAMING_PY) -m streaming.analyst_simulator $(ARGS)

evaluate: ## incidents versus ground truth: precision, recall, F1 per pattern, detection delay [RUN=run-id]
	@$(STREAMING_PY) -m streaming.evaluate $(if $(RUN),--run-id $(RUN),)

prune-history: ## delete scored windows older than PA_HISTORY_RETENTION_DAYS (38) from the history store [ARGS="--days 45"]
	@$(STACK) up postgres
	@$(STREAMING_PY) -m streaming.history_retention $(ARGS)

generate: ## write events to a file offline: make generate OUT=events.jsonl DURATION=10m [MODE=NORMAL]
	@$(STREAMING_PY) -m streaming.generator --out "$${OUT:-var/events.jsonl}" --duration "$${DURATION:-10m}" \
	  --mode "$${MODE:-NORMAL}" --no-truth-db --truth-file "$${TRUTH:-var/ground_truth.jsonl}"

train: ## quickstart model (30 generated minutes, registered as champion); FILE=history.csv|.parquet [MAPPING=...] trains on your labelled history [ARGS=...]
	@$(STACK) up postgres mlflow
	@$(AIRFLOW_PY) -m spark_jobs.train $(if $(FILE),--history "$(FILE)" $(if $(MAPPING),--mapping '$(MAPPING)',),--quickstart) $(ARGS)

backtest: ## a registered model on labelled history: make backtest FILE=history.csv|.parquet [MAPPING=json|file] [MODEL=version|alias] [ARGS=...]
	@test -n "$(FILE)" || { echo "usage: make backtest FILE=history.csv|.parquet [MAPPING='{\"actor\": \"customer_id\"}'] [MODEL=champion]"; exit 2; }
	@$(STACK) up postgres mlflow
	@$(AIRFLOW_PY) -m spark_jobs.backtest --file "$(FILE)" $(if $(MAPPING),--mapping '$(MAPPING)',) $(if $(MODEL),--model "$(MODEL)",) $(ARGS)

retrain: ## run the fraud_model_retrain DAG to completion (extract, GX, Spark, gate, swap, record) [CONF='{"gate_margin":0.02}']
	@$(STACK) up postgres mlflow
	@$(AIRFLOW_PY) scripts/retrain.py $(if $(CONF),--conf '$(CONF)',)
