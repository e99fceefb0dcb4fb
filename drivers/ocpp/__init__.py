"""OCPP 1.6J chargers as followers: the gateway's own websocket endpoint, its sessions, and the follower driver."""
