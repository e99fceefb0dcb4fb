"""``powershare``: one module per command."""
