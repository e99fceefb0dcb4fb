"""The pure core: who gets how many amps and which commands are safe now. No I/O, no clock, no pydantic."""
