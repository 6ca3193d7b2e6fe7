"""S3 storage against a real S3-protocol server (moto in server mode on a random local port)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from roomrender.config import Settings
from roomrender.services import Services, build_services
from roomrender.storage import FileMissing, new_key, open_storage
from roomrender.storage.s3 import S3Storage
from tests.conftest import BASE_URL, data_uri, drain


@pytest.fixture
def bucket(s3_bucket: str) -> str:
    return s3_bucket


def object_exists(bucket: str, name: str) -> bool:
    try:
        boto3.client("s3").head_object(Bucket=bucket, Key=name)
    except ClientError:
        return False
    return True


def test_put_get_delete_and_presigned_url(bucket: str) -> None:
    storage = S3Storage.from_url(f"s3://{bucket}/renders/")
    key = new_key("image/png", prefix="out-")
    storage.put(key, b"\x89PNG fake", "image/png")

    assert object_exists(bucket, f"renders/{key}")
    assert storage.get(key) == b"\x89PNG fake"
    url = storage.url(key)
    assert "X-Amz-Signature=" in url
    download = httpx.get(url)
    assert download.status_code == 200 and download.content == b"\x89PNG fake"
    assert download.headers["content-type"] == "image/png"

    storage.delete(key)
    storage.delete(key)  # idempotent
    assert not object_exists(bucket, f"renders/{key}")
    with pytest.raises(FileMissing):
        storage.get(key)


def test_a_file_on_disk_is_stored_with_its_content_type_and_served_by_the_store(
        bucket: str, tmp_path: Path) -> None:
    video = tmp_path / "render.mp4"
    video.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, streamed from disk
    storage = S3Storage.from_url(f"s3://{bucket}/renders")
    key = new_key("video/mp4", prefix="out-")
    storage.put_file(key, video, "video/mp4")

    assert storage.get(key) == video.read_bytes()
    head = boto3.client("s3").head_object(Bucket=bucket, Key=f"renders/{key}")
    assert head["ContentType"] == "video/mp4"
    # Clients download from the store itself; the API serves nothing of it.
    assert storage.local_path(key) is None
    part = httpx.get(storage.url(key), headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == video.read_bytes()[10:20]


def test_key_for_url_knows_only_its_own_urls(bucket: str) -> None:
    storage = S3Storage.from_url(f"s3://{bucket}/a/b")
    key = new_key("image/jpeg")
    assert storage.key_for_url(storage.url(key)) == key
    # Still recognised once the signature has expired: the key is what matters.
    assert storage.key_for_url(storage.url(key).split("?")[0] + "?X-Amz-Expires=1") == key
    other = S3Storage.from_url(f"s3://{bucket}/elsewhere")
    assert other.key_for_url(storage.url(key)) is None
    assert storage.key_for_url("https://example.com/a/b/" + key) is None
    assert storage.key_for_url(storage.url(key).split("?")[0] + "/../x") is None


def test_public_url_mode(bucket: str, s3_endpoint: str) -> None:
    # The operator makes the prefix publicly readable (bucket policy or CDN); roomrender only
    # builds the URLs.
    boto3.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/pub/*"}],
    }))
    public = f"{s3_endpoint}/{bucket}/pub"
    storage = open_storage(f"s3://{bucket}/pub", BASE_URL, public_url=public + "/")
    key = new_key("image/png")
    storage.put(key, b"bytes", "image/png")
    assert storage.url(key) == f"{public}/{key}"
    assert storage.key_for_url(f"{public}/{key}") == key
    assert httpx.get(storage.url(key)).content == b"bytes"


def test_bad_storage_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        S3Storage.from_url("s3:///nobucket")


@pytest.fixture
def s3_services(settings: Settings, bucket: str) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={
        "storage_url": f"s3://{bucket}/rr", "result_ttl_seconds": 600}))
    yield built
    built.db.dispose()


def test_job_inputs_and_outputs_live_in_the_bucket(s3_services: Services, bucket: str,
                                                  room_jpeg: bytes) -> None:
    from fastapi.testclient import TestClient

    from roomrender.app import create_app

    app = create_app(s3_services.settings, services=s3_services, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as client:
        auth = {"Authorization": f"Bearer {s3_services.keys.create('s3')[1]}"}
        created = client.post("/v1/jobs", headers=auth, json={
            "task": "restyle", "image": data_uri(room_jpeg), "style": "modern"})
        assert created.status_code == 202, created.text
        assert drain(s3_services) == 1
        job = client.get(f"/v1/jobs/{created.json()['id']}", headers=auth).json()
        assert job["status"] == "succeeded"
        result_url = job["outputs"][0]["url"]
        download = httpx.get(result_url)
        assert download.status_code == 200 and download.content[:4] == b"\x89PNG"
        keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]}
        assert any(k.startswith("rr/in-") for k in keys) and any(k.startswith("rr/out-") for k in keys)

        # A result URL of this server is used from the store directly: fetching it over HTTP
        # would be refused (127.0.0.1 is a private address).
        again = client.post("/v1/jobs", headers=auth, json={
            "task": "restyle", "image": result_url, "style": "industrial_loft"})
        assert again.status_code == 202, again.text
        assert drain(s3_services) == 1
        second = client.get(f"/v1/jobs/{again.json()['id']}", headers=auth).json()
        assert second["status"] == "succeeded", second

        # Server-side expiry: the janitor deletes expired results from the bucket.
        assert s3_services.files.delete_expired(now=time.time() + 601) >= 2
        out_key = result_url.split("?")[0].rsplit("/", 1)[1]
        assert not object_exists(bucket, f"rr/{out_key}")
