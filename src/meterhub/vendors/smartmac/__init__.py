"""smart-MAC device: the simulator of its local API (and, in time, client, mapping, connector)."""
