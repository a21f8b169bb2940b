# tisbench: every target brings what it needs first (scripts/bootstrap.sh says each step).
VENV     ?= .venv
TISBENCH := $(VENV)/bin/tisbench
PYTEST   := $(VENV)/bin/pytest
STACK    ?= stacks/quickstart
RELEASE  ?= 24.10
IMAGES   ?= lab
NAME     ?=
ARGS     ?=

.PHONY: help setup docker lab lab-images up bench down status test test-unit test-e2e lint bench-perf matrix tune clean
MATRIX_RELEASES ?= 23.07,24.10

help:
	@echo "make lab          run the quickstart lab end to end (STACK, RELEASE, IMAGES)"
	@echo "make test         unit + Docker tests (brings Docker and the lab images when missing)"
	@echo "make lab-images   build the CPU lab images (skipped when present)"
	@echo "make up|bench|down|status   step by step (NAME=lab name)"
	@echo "make tune         the model configuration that serves best (STACK, RELEASE, IMAGES, ARGS)"
	@echo "make bench-perf   tisbench vs the hand workflow, as ratios"

setup:
	@scripts/bootstrap.sh --venv-only

docker:
	@scripts/bootstrap.sh

lab-images:
	@scripts/bootstrap.sh --images

lab: lab-images
	$(TISBENCH) lab $(STACK) --release $(RELEASE) --images $(IMAGES) $(ARGS)

up: lab-images
	$(TISBENCH) up $(STACK) --release $(RELEASE) --images $(IMAGES) $(if $(NAME),--name $(NAME))

bench: setup
	$(TISBENCH) bench $(NAME) $(ARGS)

down: setup
	$(TISBENCH) down $(if $(NAME),$(NAME),--all)

status: setup
	$(TISBENCH) status

# The release-matrix test needs a second release's images.
TEST_RELEASES ?= --release 24.10 --release 23.07

test:
	@LAB_RELEASES="$(TEST_RELEASES)" scripts/bootstrap.sh --images --test --kube
	$(VENV)/bin/ruff check composer tests benchmarks
	$(VENV)/bin/mypy composer
	$(VENV)/bin/lint-imports
	$(PYTEST) tests

test-unit: setup
	$(PYTEST) tests/unit

test-e2e:
	@LAB_RELEASES="$(TEST_RELEASES)" scripts/bootstrap.sh --images --test --kube
	$(PYTEST) tests/e2e

lint: setup
	$(VENV)/bin/ruff check composer tests benchmarks
	$(VENV)/bin/mypy composer
	$(VENV)/bin/lint-imports

matrix:
	@LAB_RELEASES="--all" scripts/bootstrap.sh --images
	$(TISBENCH) matrix $(STACK) --releases $(MATRIX_RELEASES) --images $(IMAGES) $(ARGS)

tune: lab-images
	$(TISBENCH) tune $(STACK) --release $(RELEASE) --images $(IMAGES) $(ARGS)

bench-perf: lab-images
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
