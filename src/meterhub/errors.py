"""Every error meterhub raises on purpose.

    MeterhubError                 base; its message is meant for a person
    ├── ConfigError               a setting is missing or malformed
    ├── InputError                a user-supplied value is malformed (time, option, file)
    │   └── ImportFileError       an import file cannot be read or parsed
    ├── NotFoundError             an object named by id does not exist
    │   ├── UnknownMeterError
    │   └── UnknownPlaceError
    ├── ConflictError             an object already exists
    ├── StoreError                the database cannot be reached, opened or migrated
    │   └── MigrationError
    └── VendorError               a vendor API or device failed
        ├── VendorUnavailable     timeout, connection refused, HTTP 5xx, empty or truncated body
        ├── VendorAuthError       bad credentials, expired or rejected token
        ├── QuotaExceeded         a documented vendor limit would be or was exceeded
        │   └── QuotaHeld         our own quota ledger refused: another caller holds the slot
        └── PayloadError          the vendor answered something that cannot be mapped

Every vendor or parse failure is raised ``from`` its cause, so logs keep the chain while the
user sees one line.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "FieldError",
    "ImportFileError",
    "InputError",
    "MeterhubError",
    "MigrationError",
    "NotFoundError",
    "PayloadError",
    "QuotaExceeded",
    "QuotaHeld",
    "StoreError",
    "UnknownMeterError",
    "UnknownPlaceError",
    "VendorAuthError",
    "VendorError",
    "VendorUnavailable",
]


class MeterhubError(Exception):
    """Base of every meterhub error; ``str(error)`` is a message a person can act on."""


class ConfigError(MeterhubError):
    """A setting is missing or malformed."""


class InputError(MeterhubError):
    """A value given by the user is malformed."""


class FieldError(InputError):
    """A value given for one named field (of a meter, a place, a tariff) is refused.

    ``field`` names it as the API's bodies and the dashboard's forms do, so a form shows the
    message next to that field.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ImportFileError(InputError):
    """An import file cannot be read or parsed."""


class NotFoundError(MeterhubError):
    """An object named by id does not exist."""


class UnknownMeterError(NotFoundError):
    """No meter has this id."""

    def __init__(self, meter_id: str) -> None:
        super().__init__(f"unknown meter {meter_id!r} (see 'meterhub meters list')")
        self.meter_id = meter_id


class UnknownPlaceError(NotFoundError):
    """No place has this id."""

    def __init__(self, place_id: str) -> None:
        super().__init__(f"unknown place {place_id!r} (see 'meterhub places list')")
        self.place_id = place_id


class ConflictError(MeterhubError):
    """An object with this id or name already exists."""


class StoreError(MeterhubError):
    """The database cannot be reached, opened or used."""


class MigrationError(StoreError):
    """A schema migration failed or the database is newer than this meterhub."""


class VendorError(MeterhubError):
    """A vendor API or device failed."""


class VendorUnavailable(VendorError):
    """The vendor did not answer usefully: timeout, refused, 5xx, empty or truncated body."""


class VendorAuthError(VendorError):
    """The vendor rejected the credentials or the token."""


class QuotaExceeded(VendorError):
    """A documented vendor limit would be or was exceeded."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QuotaHeld(QuotaExceeded):
    """Our own quota ledger refused a call before it was made: another caller holds the slot."""


class PayloadError(VendorError):
    """The vendor answered something that cannot be mapped to readings."""
