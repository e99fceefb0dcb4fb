"""Where the repository's files are, for tests that read docs, examples or run the CLI."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
