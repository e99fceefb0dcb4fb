"""``powershare demo``: the real gateway leading simulated chargers, with cars coming and going."""
