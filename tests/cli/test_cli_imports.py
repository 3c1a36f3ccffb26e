"""The quick commands load no web server, charts or poller: counted in a fresh process per command.

Each command runs in a new interpreter through a small runner that invokes the CLI with
``standalone_mode=False`` and then writes the names in ``sys.modules`` to a file, so the test
counts imported modules rather than timing anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from meterhub import __version__
from meterhub.cli import main
from meterhub.cli.app import VERBS
from meterhub.config import Settings
from meterhub.store.factory import DEFAULT_DATABASE_URL

HEAVY = (
    "fastapi",
    "matplotlib",
    "uvicorn",
    "starlette",
    "meterhub.poller",
    "meterhub.api",
    "meterhub.web",
    "pyarrow",
    "meterhub.importer",
)
"""What a quick command must never import: the web stack, the charts, the poller, the API, the importer."""

RUNNER = """
import json, sys
from meterhub.cli import main
modules_file, *args = sys.argv[1:]
try:
    code = main(args, prog_name="meterhub", standalone_mode=False)
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
with open(modules_file, "w") as sink:
    json.dump({"code": code, "modules": sorted(sys.modules)}, sink)
"""

READINGS_CSV = """meter,ts,phase,voltage_v,current_a,power_w,energy_import_kwh,energy_export_kwh
house,2026-03-01T00:00:00+00:00,0,230.0,4.0,1000.0,10.0,0.5
house,2026-03-01T00:01:00+00:00,0,231.0,5.0,1200.0,10.02,0.5
house,2026-03-01T00:02:00+00:00,0,232.0,6.0,1400.0,10.04,0.5
"""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A real SQLite file holding one UTC meter with three minute readings, made by the CLI."""
    path = tmp_path / "meterhub.db"
    source = tmp_path / "in.csv"
    source.write_text(READINGS_CSV)
    url = f"sqlite:///{path}"
    for args in (
        ["meters", "add", "house", "--vendor", "file", "--phases", "1", "--tz", "UTC", "--interval-s", "60"],
        ["import", str(source)],
    ):
        result = CliRunner().invoke(main, ["--database-url", url, *args])
        assert result.exit_code == 0, (result.stdout, result.stderr)
    return path


def _clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("METERHUB_")}
    return {**env, **extra}


def _run_fresh(
    tmp_path: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], int | None, set[str]]:
    modules_file = tmp_path / "modules.json"
    modules_file.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, str(modules_file), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd or tmp_path,
        env=env or _clean_env(),
    )
    assert modules_file.is_file(), completed.stderr
    answer = json.loads(modules_file.read_text())
    return completed, answer["code"], set(answer["modules"])


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_version_imports_no_verb_and_no_store(tmp_path: Path) -> None:
    completed, code, modules = _run_fresh(tmp_path, "--version")
    assert completed.stdout == f"meterhub, version {__version__}\n"
    assert code == 0
    assert _heavy(modules) == []
    assert "numpy" not in modules and "meterhub.store" not in modules
    assert sorted(m for m in modules if m.startswith("meterhub.cli.")) == ["meterhub.cli.app"]


def test_help_lists_every_verb_without_loading_one(tmp_path: Path) -> None:
    completed, code, modules = _run_fresh(tmp_path, "--help")
    assert code == 0
    listed = completed.stdout.split("Commands:\n", 1)[1].split()
    for verb in ("analyze", "import", "latest", "readings", "serve", "simulate", "status", "users"):
        assert verb in listed
    assert sorted(VERBS) == [
        "analyze", "backfill", "capacity", "cost", "db", "demo", "energy", "export", "homeassistant",
        "import", "keys", "latest", "meters", "places", "poll", "prices", "readings", "relay",
        "series", "serve", "settings", "simulate", "status", "users",
    ]  # fmt: skip
    assert all(verb in listed for verb in VERBS)
    assert sorted(m for m in modules if m.startswith("meterhub.cli.")) == ["meterhub.cli.app"]
    assert _heavy(modules) == []


def test_latest_help_and_latest_load_nothing_heavy(tmp_path: Path, db_path: Path) -> None:
    completed, code, modules = _run_fresh(tmp_path, "latest", "--help")
    assert code == 0 and "Show the newest whole-meter reading of every meter." in completed.stdout
    assert _heavy(modules) == []
    completed, code, modules = _run_fresh(
        tmp_path, "--database-url", f"sqlite:///{db_path}", "latest", "--format", "csv"
    )
    assert code is None, completed.stderr
    assert completed.stdout.splitlines()[1].startswith("house,2026-03-01T00:02:00+00:00,1400.0,232.0,6.0,")
    assert _heavy(modules) == []


def test_readings_loads_nothing_heavy(tmp_path: Path, db_path: Path) -> None:
    completed, code, modules = _run_fresh(
        tmp_path,
        "--database-url",
        f"sqlite:///{db_path}",
        "readings",
        "house",
        "--start",
        "2026-03-01",
        "--end",
        "2026-03-02",
        "--bucket",
        "1h",
        "--format",
        "csv",
    )
    assert code is None, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("start,count,power_avg_w,power_min_w,power_max_w,voltage_avg_v,")
    # One hour bucket of the three readings: (1000 + 1200 + 1400) / 3 W, 231 V and 5 A on average.
    assert lines[1].startswith("2026-03-01T00:00:00+00:00,3,1200.0,1000.0,1400.0,231.0,5.0,")
    assert len(lines) == 2
    assert _heavy(modules) == []


def test_default_database_is_the_working_folders_file(tmp_path: Path, db_path: Path) -> None:
    """Without --database-url or METERHUB_DATABASE_URL, ./meterhub.db is used, as the settings say."""
    assert Settings().database_url == "sqlite:///meterhub.db" == DEFAULT_DATABASE_URL
    completed, code, modules = _run_fresh(tmp_path, "latest", "--format", "csv", cwd=db_path.parent)
    assert code is None, completed.stderr
    assert completed.stdout.splitlines()[1].startswith("house,2026-03-01T00:02:00+00:00,")
    assert "pydantic_settings" not in modules
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(METERHUB_DATABASE_URL=f"sqlite:///{db_path}")
    completed, code, _ = _run_fresh(tmp_path, "latest", "--format", "csv", cwd=elsewhere, env=env)
    assert code is None, completed.stderr
    assert completed.stdout.splitlines()[1].startswith("house,")
    assert not (elsewhere / "meterhub.db").exists()


def test_errors_of_lazily_loaded_verbs_are_one_line(tmp_path: Path, db_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "meterhub",
            "--database-url",
            f"sqlite:///{db_path}",
            "readings",
            "nosuch",
            "--start",
            "2026-03-01",
            "--end",
            "2026-03-02",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_clean_env(),
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("error: ") and "nosuch" in completed.stderr
    assert len(completed.stderr.splitlines()) == 1 and "Traceback" not in completed.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "meterhub", "nosuchverb"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_clean_env(),
    )
    assert unknown.returncode == 2 and "No such command 'nosuchverb'" in unknown.stderr


def test_the_verb_table_agrees_with_each_commands_own_help() -> None:
    ctx = click.Context(main)
    for name, verb in VERBS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name, verb.target
        assert verb.short_help == command.get_short_help_str(limit=1000), name


def test_meters_list_loads_nothing_heavy(tmp_path: Path, db_path: Path) -> None:
    completed, code, modules = _run_fresh(
        tmp_path, "--database-url", f"sqlite:///{db_path}", "meters", "list", "--format", "csv"
    )
    assert code is None, completed.stderr
    assert completed.stdout.splitlines()[1].startswith(
        "house,file,1,UTC,60,,2026-03-01T00:02:00+00:00,1400.0,"
    )
    assert _heavy(modules) == []
    assert "meterhub.catalog" not in modules and "httpx" not in modules
