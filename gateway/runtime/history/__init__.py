"""The gateway's history: sessions, events and current per phase, kept across restarts (docs/web.md)."""
