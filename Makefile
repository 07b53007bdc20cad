# The two commands of the README. Each sets up what it needs on a fresh machine, then runs.
.PHONY: demo test setup bench bench-quick clean

setup:
	bash scripts/setup_env.sh

demo: setup
	.venv/bin/python examples/demo.py

test: setup
	.venv/bin/python -m pytest -q tests

bench: setup
	.venv/bin/python benchmarks/run_all.py
	.venv/bin/python benchmarks/speed_report.py

bench-quick: setup
	.venv/bin/python benchmarks/run_all.py --quick

clean:
	rm -rf .venv .lava-venv .cache
