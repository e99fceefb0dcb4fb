"""Register maps of real charger controllers and meters, as data (YAML), shipped inside the package.

This is a package only so that the YAML files install with ``pip install .`` and are found with
``importlib.resources`` wherever the gateway is installed.
"""
