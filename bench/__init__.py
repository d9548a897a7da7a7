"""Benchmarks of kimi-jupyter against baselines measured in the same run: ``python -m bench.run``."""
