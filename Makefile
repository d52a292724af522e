# The two commands a newcomer needs: `make run` (the seed comparison) and `make test`.
# Both create .venv from the lock files on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UI_PORT ?= 5000

.PHONY: run test ui lint clean

$(STAMP): requirements.lock requirements-dev.lock requirements-ray.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock -r requirements-dev.lock -r requirements-ray.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The seed comparison: standard vs sparse on both seed cases, then the table of the four runs.
run: $(STAMP)
	$(PY) src/train.py -m +experiment=seed model=standard,sparse data=case1,case2

test: $(STAMP)
	$(PY) -m pytest -q

ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db --host 127.0.0.1 --port $(UI_PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests experiments

clean:
	rm -rf $(VENV) outputs multirun
