"""The schema is migrated by `roomrender db upgrade`, and a process refuses a schema that is behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from roomrender.cli import app as cli
from roomrender.config import Settings
from roomrender.db.database import (
    SchemaOutOfDate,
    current_revision,
    head_revision,
    open_database,
)
from roomrender.services import build_services


def test_a_schema_behind_is_refused_with_what_to_run(empty_database_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=empty_database_url, auto_migrate=False)
    with pytest.raises(SchemaOutOfDate, match=r"run `roomrender db upgrade`") as refused:
        build_services(settings)
    assert f"needs {head_revision()}" in str(refused.value)


def test_cli_says_to_upgrade_then_upgrade_fixes_it(empty_database_url: str, tmp_path: Path) -> None:
    env = {"ROOMRENDER_DATABASE_URL": empty_database_url, "ROOMRENDER_AUTO_MIGRATE": "false",
           "ROOMRENDER_DATA_DIR": str(tmp_path)}
    runner = CliRunner()

    refused = runner.invoke(cli, ["keys", "create", "--name", "ops"], env=env)
    assert refused.exit_code == 2
    assert "roomrender db upgrade" in refused.output and "Traceback" not in refused.output

    upgraded = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    db = open_database(empty_database_url)
    assert current_revision(db) == head_revision()
    db.dispose()

    created = runner.invoke(cli, ["keys", "create", "--name", "ops"], env=env)
    assert created.exit_code == 0, created.output
    assert created.output.strip().splitlines()[-1].startswith("rr_")
