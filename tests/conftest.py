"""Shared test helpers. Real sockets and serial lines are used throughout; see the individual fixtures."""
