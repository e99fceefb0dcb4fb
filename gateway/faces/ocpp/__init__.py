"""The OCPP 1.6J face: smart-charging rules, configuration keys and the offline queue (pure or sync), plus a
central-system simulator for tests and demos. The live charge-point client builds on these."""
