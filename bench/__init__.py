"""Proof and performance tooling: `python -m bench` (`make bench`) compares the submission handler with a
bare boto3 baseline (`bench/baseline.py`) and a lower bound (`bench/floor.py`), cold and warm, in the
layout Lambda runs them in (`bench/layout.py`); `python -m bench.load` (`make load`) loads the local
server. The children (`bench/lambda_child.py`) run as scripts beside the layout, never through this
package."""
