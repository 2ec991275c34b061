"""Benchmarks of this project's own code (`make bench`), not of the distros it measures."""
