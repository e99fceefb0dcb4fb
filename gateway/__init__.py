"""powershare: a gateway that shares one electrical supply among many EV chargers."""

__version__ = "0.2.0"
