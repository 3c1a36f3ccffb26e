"""Time-series storage behind one protocol: SQLite (embedded default) and PostgreSQL."""

from meterhub.store.base import Bucket, Store, WriteResult
from meterhub.store.factory import DEFAULT_DATABASE_URL, open_store

__all__ = ["DEFAULT_DATABASE_URL", "Bucket", "Store", "WriteResult", "open_store"]
