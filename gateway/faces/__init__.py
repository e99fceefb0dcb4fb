"""What the world talks to: the BMS Modbus server, the OCPP client and endpoint, the web page."""
