"""Simulation in virtual time: the virtual site, the benchmark, and a small central system for tests."""
