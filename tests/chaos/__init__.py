"""The chaos run (issue 19): a seeded workload through the rater and the invoice workflow on
the local runtime while faults are injected, checked against an independent oracle
(oracle.py). `python -m tests.chaos.runner --help`; docs/chaos.md."""
