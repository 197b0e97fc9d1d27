"""Benchmarks (`make bench` = `python -m bench`): each module's main(quick) prints its figures
as ratios against a baseline measured in the same run, plus absolute numbers, and returns them."""
