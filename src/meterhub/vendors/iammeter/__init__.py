"""IAMMETER cloud: the simulator of its API (and, in time, the client, mapping and connector)."""
