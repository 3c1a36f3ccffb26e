"""Vendor integrations: one folder per vendor, plus the shared household physics."""
