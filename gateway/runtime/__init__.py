"""The asyncio shell around the core: the supervisor, the app that assembles it, and the wiring to drivers."""
