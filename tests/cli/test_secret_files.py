"""Secrets kept in files (``file:/path``), as systemd credentials and Docker secrets keep them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from meterhub.config import resolve_secret
from meterhub.errors import ConfigError
from tests.cli.conftest import Run
from tests.simservers import simulator


def secret_file(folder: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_a_file_reference_reads_the_file_without_its_final_line_break(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "pin", "4711-secret\n")
    assert resolve_secret(f"file:{path}") == "4711-secret"
    inner = secret_file(tmp_path, "inner", "two\nlines")
    assert resolve_secret(f"file:{inner}") == "two\nlines"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: secret_file(d, "open", "x", 0o644), "may be read by others (mode 644); run: chmod 600"),
        (lambda d: secret_file(d, "group", "x", 0o640), "may be read by others (mode 640)"),
        (lambda d: d / "missing", "No such file or directory"),
        (lambda d: d, "is not a regular file"),
        (lambda d: secret_file(d, "big", "x" * 5000), "is larger than 4096 bytes"),
    ],
)
def test_a_file_reference_to_an_unsafe_or_missing_file_is_refused(
    tmp_path: Path, setup: Callable[[Path], Path], message: str
) -> None:
    path = setup(tmp_path)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_secret(f"file:{path}")


@pytest.mark.parametrize("reference", ["file:relative/pin", "file:", "vault:pin", "env:1BAD"])
def test_malformed_references_name_both_forms_or_the_rule(reference: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_secret(reference)
    assert "absolute path" in str(caught.value) or "env:" in str(caught.value)


def test_a_meter_with_a_file_reference_switches_its_relay_from_any_shell(
    run: Run, tmp_path: Path
) -> None:
    with simulator("smartmac", extended=True) as sim:
        info = sim.info()
        pin = secret_file(tmp_path, "smartmac-pin", f"{info['devpass']}\n")
        run(
            "meters", "add", "sm", "--vendor", "smartmac", "--phases", "3", "--base-url", sim.base_url,
            "--devid", info["devid"], "--option", f"devpass=file:{pin}", "--rate-class", "extended",
        )  # fmt: skip
        assert not any(name.startswith("T_") for name in os.environ)
        on = run("relay", "sm", "on")
        assert sim.info()["relay_on"] is True
        pin.chmod(0o644)
        refused = run("relay", "sm", "off", ok=False)
        assert sim.info()["relay_on"] is True
    assert on.stdout.startswith("relay of sm is on (as the device reports, live at ")
    assert refused.exit_code == 1
    assert f"secret file {pin} may be read by others (mode 644); run: chmod 600 {pin}" in refused.stderr
    assert info["devpass"] not in refused.stderr + refused.stdout + on.stdout


def test_meters_add_refuses_a_relative_file_reference(run: Run) -> None:
    result = run(
        "meters", "add", "sm", "--vendor", "smartmac", "--base-url", "http://10.0.0.7",
        "--devid", "1728053249", "--option", "devpass=file:pin.txt", ok=False,
    )  # fmt: skip
    assert result.exit_code != 0
    assert "env:VARIABLE_NAME or file:/absolute/path" in result.stderr
