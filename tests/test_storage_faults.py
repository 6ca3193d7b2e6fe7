"""A full or read-only store: clear 503s (`storage_unavailable`), /readyz not ready, workers that
back off and log once per change, no partial files; once space is back, nothing was lost."""

from __future__ import annotations

import errno
import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from roomrender.canonical.errors import StorageUnavailable
from roomrender.db.tables import files
from roomrender.storage.local import LocalStorage
from tests.conftest import data_uri, make_room_photo


class FillableDisk(LocalStorage):
    """A LocalStorage whose disk fills up on demand: while `full`, every write fails as a full
    disk does (ENOSPC in the middle of writing the file), through LocalStorage's own handling."""

    full = False

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if not self.full:
            super().put(key, data, content_type)
            return
        import os

        real_fdopen = os.fdopen

        class HalfWritten:
            def __init__(self, fd: int, mode: str) -> None:
                self.handle = real_fdopen(fd, mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc: object) -> None:
                self.handle.close()

            def write(self, chunk: bytes) -> int:
                self.handle.write(chunk[: len(chunk) // 2])
                self.handle.flush()
                raise OSError(errno.ENOSPC, "No space left on device")

        import roomrender.storage.local as local

        original = local.os.fdopen
        local.os.fdopen = HalfWritten  # type: ignore[assignment]
        try:
            super().put(key, data, content_type)
        finally:
            local.os.fdopen = original


def leftovers(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


@pytest.mark.slow
def test_a_full_disk_then_space_again_loses_nothing(client, auth, services, caplog):
    disk = FillableDisk(services.storage.root, services.storage.public_base_url)
    services.files.storage = disk
    photo = data_uri(make_room_photo(96, 64))
    job_ids = [client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo,
                                                           "style": "modern"}).json()["id"]
               for _ in range(3)]
    assert client.get("/readyz").status_code == 200

    disk.full = True
    # New work is refused clearly, in each dialect, and nothing of it stays.
    with services.db.connect() as connection:
        rows_before = connection.execute(select(func.count()).select_from(files)).scalar_one()
    native = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo})
    assert native.status_code == 503 and native.json()["error"]["code"] == "storage_unavailable"
    assert native.headers["retry-after"]
    luw = client.post("/v2/generate", headers=auth, json={"model": "interior", "image": photo,
                                                          "styles": "Modern"})
    assert luw.status_code == 500 and luw.json()["status"] is False
    upload = client.post("/v1/uploads", headers=auth,
                         files={"file": ("room.jpg", make_room_photo(64, 48))})
    assert upload.status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["code"] == "storage_unavailable"
    with services.db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(files)).scalar_one() == rows_before
    assert leftovers(disk.root) == []

    # A worker keeps trying, less and less often, and says so once.
    worker = services.new_worker()
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="roomrender.worker")
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(2.0)
    statuses = {client.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"]
                for job_id in job_ids}
    assert statuses <= {"queued", "running"}, statuses
    complaints = [r for r in caplog.records if r.name == "roomrender.worker"
                  and "retrying" in r.getMessage()]
    assert len(complaints) == 1, [r.getMessage() for r in caplog.records]
    assert not any(r.exc_info for r in complaints)
    assert worker.trouble.failures >= 2 and worker.trouble.delay() > services.settings.worker_poll_seconds
    assert leftovers(disk.root) == []

    # Space again: every job succeeds, its outputs readable; nothing half-written anywhere.
    disk.full = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = [client.get(f"/v1/jobs/{job_id}", headers=auth).json() for job_id in job_ids]
        if all(job["status"] == "succeeded" for job in jobs):
            break
        time.sleep(0.1)
    while time.monotonic() < deadline + 15 and worker.trouble.failing:
        time.sleep(0.1)
    stop.set()
    thread.join(10)
    assert [job["status"] for job in jobs] == ["succeeded"] * 3, jobs
    assert all(job["error"] is None for job in jobs)
    for job in jobs:
        assert client.get(job["outputs"][0]["url"]).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert any("working again" in r.getMessage() for r in caplog.records)
    assert leftovers(disk.root) == []


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True)
    return result.returncode == 0


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    mount = tmp_path / "tiny"
    if not _mount_tmpfs(mount, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root): the simulated full disk above covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_local_storage_on_a_real_full_and_read_only_tmpfs(tiny_tmpfs: Path):
    storage = LocalStorage(tiny_tmpfs / "files", "http://testserver")
    storage.put("small.png", b"x" * 1000, "image/png")
    with pytest.raises(StorageUnavailable, match="(?i)no space"):
        storage.put("big.png", b"x" * 400_000, "image/png")
    assert leftovers(tiny_tmpfs) == []
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    with pytest.raises(StorageUnavailable, match="(?i)read-only"):
        storage.put("other.png", b"x" * 10, "image/png")
    subprocess.run(["mount", "-o", "remount,rw", str(tiny_tmpfs)], check=True)
    storage.put("other.png", b"x" * 10, "image/png")
    assert storage.get("small.png") == b"x" * 1000


def test_a_database_that_cannot_be_written_is_a_503_in_each_dialect(client, auth, services,
                                                                      monkeypatch):
    from sqlalchemy.exc import OperationalError

    def disk_full(*_args: object, **_kwargs: object) -> bool:
        raise OperationalError("INSERT INTO jobs ...", {}, Exception("database or disk is full"))

    monkeypatch.setattr(services.queue, "enqueue", disk_full)
    photo = data_uri(make_room_photo(64, 48))
    native = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo})
    assert native.status_code == 503 and native.json()["error"]["code"] == "database_unavailable"
    assert native.headers["retry-after"]
    spacely = client.post("/api/v1/generate/standard", headers={"X-API-KEY": auth["Authorization"][7:]},
                          json={"model": "spacely-v1", "imageUrl": photo, "spaceType": "bedroom",
                                "spaceStyle": "modern", "renovateType": "residential"})
    assert spacely.status_code == 500
    assert spacely.json()["error"]["code"] == "database_unavailable"
    luw = client.post("/v2/generate", headers=auth, json={"model": "interior", "image": photo,
                                                          "styles": "Modern"})
    assert luw.status_code == 500 and luw.json()["status"] is False


class ReadOnlyMount:
    """A LocalStorage root remounted read-only and back: while `read_only`, creating a file and
    unlinking one (even one that is not there) fail with EROFS, as Linux does on such a mount."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import tempfile

        import roomrender.storage.local as local

        self.read_only = False
        real_mkstemp, real_unlink = tempfile.mkstemp, Path.unlink
        mount = self

        def mkstemp(*args: object, **kwargs: object):
            if mount.read_only:
                raise OSError(errno.EROFS, "Read-only file system")
            return real_mkstemp(*args, **kwargs)

        def unlink(path: Path, missing_ok: bool = False) -> None:
            if mount.read_only and path.is_relative_to(root):
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            real_unlink(path, missing_ok=missing_ok)

        monkeypatch.setattr(local.tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(Path, "unlink", unlink)


@pytest.mark.slow
def test_a_read_only_store_hands_jobs_back_uncounted_and_leaves_no_row_without_its_file(
        client, auth, services, caplog, monkeypatch):
    from roomrender.db.tables import jobs as jobs_table

    mount = ReadOnlyMount(services.storage.root, monkeypatch)
    photo = data_uri(make_room_photo(96, 64))
    job_ids = [client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo,
                                                           "style": "modern"}).json()["id"]
               for _ in range(6)]
    mount.read_only = True
    native = client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": photo})
    assert native.status_code == 503 and native.json()["error"]["code"] == "storage_unavailable"
    assert client.get("/readyz").status_code == 503

    worker = services.new_worker()
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="roomrender.worker")
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(2.0)
        # Handed back, not stuck running until a lease ends; no attempt counted; the worker
        # backs off; no output row names a file that was never written.
        with services.db.connect() as connection:
            rows = connection.execute(select(jobs_table.c.status, jobs_table.c.attempts)
                                      .where(jobs_table.c.id.in_(job_ids))).all()
            outputs = connection.execute(select(func.count()).select_from(files)
                                         .where(files.c.kind == "output")).scalar_one()
        assert {status for status, _ in rows} <= {"queued", "running"}, rows
        assert all(attempts <= 1 for _, attempts in rows), rows
        assert outputs <= 6  # at most the batch being stored right now
        assert worker.trouble.failures >= 2
        assert not [r for r in caplog.records if r.name == "roomrender.worker" and r.exc_info]

        mount.read_only = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = [client.get(f"/v1/jobs/{job_id}", headers=auth).json() for job_id in job_ids]
            if all(job["status"] == "succeeded" for job in found):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(10)
    assert [job["status"] for job in found] == ["succeeded"] * 6, found
    for job in found:
        assert client.get(job["outputs"][0]["url"]).status_code == 200
    with services.db.connect() as connection:
        attempts = connection.execute(select(jobs_table.c.attempts)
                                      .where(jobs_table.c.id.in_(job_ids))).scalars().all()
        keys = connection.execute(select(files.c.key).where(files.c.kind == "output")).scalars().all()
    assert attempts == [1] * 6, attempts
    for key in keys:  # every output row has its file
        assert services.storage.local_path(key).is_file()
    assert leftovers(services.storage.root) == []
