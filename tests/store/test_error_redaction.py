"""Store errors that echo a connection string never carry its secrets."""

from __future__ import annotations

from meterhub.store.postgres_reads import one_line


def test_a_store_error_message_hides_every_connection_secret() -> None:
    cause = Exception(
        "connection failed:\n"
        "  postgresql://app:hunter2@db/meters?sslpassword=s3cr3t\n"
        "  host=db password='pa ss'"
    )
    message = one_line(cause)
    assert "\n" not in message
    assert "hunter2" not in message and "s3cr3t" not in message and "pa ss" not in message
    assert message.startswith("connection failed: postgresql://app:***@db/meters")
