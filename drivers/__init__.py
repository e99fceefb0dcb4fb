"""Talking to chargers and meters (Modbus, OCPP, simulators); knows nothing of power sharing."""
