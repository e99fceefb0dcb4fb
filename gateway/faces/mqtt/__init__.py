"""The MQTT face: status out, network limit and sharing in, Home Assistant discovery (docs/mqtt.md)."""
