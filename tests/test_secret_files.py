"""Files holding secrets (the SQLite database: key hashes, webhook secrets; the signing secret)
are readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from typer.testing import CliRunner

from roomrender.cli import app as cli
from roomrender.config import Settings
from roomrender.services import build_services
from roomrender.url_signing import server_secret


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_the_secret_key_are_not_world_readable(tmp_path: Path):
    old = os.umask(0o022)
    try:
        settings = Settings(data_dir=tmp_path / "data")
        services = build_services(settings)
        services.keys.create("someone")
        server_secret(settings)
        services.db.dispose()
    finally:
        os.umask(old)
    data = tmp_path / "data"
    for path in [data / "roomrender.db", data / "secret_key",
                 *data.glob("roomrender.db-*")]:
        assert mode(path) & 0o077 == 0, f"{path.name} is {oct(mode(path))}"


def test_files_made_readable_before_are_made_private(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    build_services(settings).db.dispose()
    server_secret(settings)
    for name in ("roomrender.db", "secret_key"):
        os.chmod(tmp_path / "data" / name, 0o644)
    build_services(settings).db.dispose()
    server_secret(settings)
    for name in ("roomrender.db", "secret_key"):
        assert mode(tmp_path / "data" / name) == 0o600


def test_keys_create_takes_limits(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ROOMRENDER_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--name", "batch", "--rate-limit", "5/second",
                               "--max-active-jobs", "3"])
    assert made.exit_code == 0, made.output
    services = build_services(Settings(data_dir=tmp_path / "data"))
    [key] = services.keys.list()
    assert (key.rate_limit, key.max_active_jobs) == ("5/second", 3)
    refused = runner.invoke(cli, ["keys", "create", "--name", "x", "--rate-limit", "lots"])
    assert refused.exit_code == 2 and "rate limit" in refused.output
