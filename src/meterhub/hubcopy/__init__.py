"""Copy a whole hub into another database (SQLite to PostgreSQL, typically), resumably and verified."""

from meterhub.hubcopy.copier import DEFAULT_BATCH_ROWS, MIRRORED_TABLES, CopyOutcome, HubCopy
from meterhub.hubcopy.verify import Report

__all__ = ["DEFAULT_BATCH_ROWS", "MIRRORED_TABLES", "CopyOutcome", "HubCopy", "Report"]
