"""meterhub: a self-hosted, vendor-neutral hub for electricity-meter data."""

__version__ = "0.1.0"

__all__ = ["__version__"]
