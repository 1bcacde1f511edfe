"""Alignment benchmarks, as ratios against a baseline measured in the same run (`python -m alignment.bench`)."""
