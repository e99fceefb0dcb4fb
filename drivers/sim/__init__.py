"""Simulated vehicles, chargers and meters, for tests, benchmarks and the demo."""
