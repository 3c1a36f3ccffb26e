"""The HTTP interface of the hub."""
