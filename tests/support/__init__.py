"""Helpers shared by the tests: rigs, fakes at the bottom, real sockets and serial lines at the top."""
