"""Files in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...), under an optional key prefix.

The endpoint, region and credentials come from the usual AWS settings (AWS_ENDPOINT_URL,
AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance
roles...), exactly as for the aws CLI. Clients download results straight from the store: at
`public_url/<key>` when the objects are public (a public bucket or a CDN in front of it), else at
a presigned URL valid for `presign_seconds`, freshly signed each time a job is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from roomrender.canonical.errors import StorageUnavailable
from roomrender.storage.base import FileMissing, StorageOptions
from roomrender.storage.local import is_safe_key

# Signed in place of a key to learn what the store's URLs look like before the key.
_PROBE_KEY = "roomrender-url-probe"


def open_s3(url: str, options: StorageOptions) -> S3Storage:
    """`s3://bucket/prefix`: the `s3` entry point of `roomrender.storage`."""
    return S3Storage.from_url(url, public_url=options.public_url, presign_seconds=options.presign_seconds)


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str = "", *, public_url: str | None = None,
                 presign_seconds: int = 3600) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.public_url = public_url.rstrip("/") if public_url else None
        self.presign_seconds = presign_seconds
        self._url_base: str | None = None

    @classmethod
    def from_url(cls, url: str, *, public_url: str | None = None, presign_seconds: int = 3600,
                 client: Any = None) -> S3Storage:
        """`s3://bucket/prefix`; the client is built from the AWS environment unless given."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an S3 storage URL: {url!r} (expected s3://bucket/prefix)")
        if client is None:
            import boto3
            from botocore.config import Config

            # SigV4: what every S3-compatible store accepts for presigned URLs nowadays.
            client = boto3.client("s3", config=Config(signature_version="s3v4"))
        return cls(client, parsed.netloc, parsed.path, public_url=public_url,
                   presign_seconds=presign_seconds)

    def _object(self, key: str) -> str:
        if not is_safe_key(key):
            raise FileMissing(key)
        return self.prefix + key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data,
                                   ContentType=content_type)
        except (BotoCoreError, ClientError) as failed:
            raise StorageUnavailable(f"the object store refused the file: {failed}") from failed

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # In parts when it is large; never whole in memory.
            self.client.upload_file(str(path), self.bucket, self._object(key),
                                    ExtraArgs={"ContentType": content_type})
        except (BotoCoreError, ClientError, S3UploadFailedError) as failed:
            raise StorageUnavailable(f"the object store refused the file: {failed}") from failed

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object(key))
        except self.client.exceptions.NoSuchKey as missing:
            raise FileMissing(key) from missing
        return response["Body"].read()  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        try:
            name = self._object(key)
        except FileMissing:
            return
        # Deleting a missing object succeeds on S3, so this is idempotent like LocalStorage's.
        self.client.delete_object(Bucket=self.bucket, Key=name)

    def local_path(self, key: str) -> None:
        """None: clients download from the store itself (`url`)."""
        return None

    def url(self, key: str) -> str:
        if self.public_url:
            return f"{self.public_url}/{key}"
        return self.client.generate_presigned_url(  # type: ignore[no-any-return]
            "get_object", Params={"Bucket": self.bucket, "Key": self._object(key)},
            ExpiresIn=self.presign_seconds)

    def key_for_url(self, url: str) -> str | None:
        """The key when `url` is one this storage handed out (presigned ones even once expired)."""
        if self._url_base is None:
            if self.public_url:
                self._url_base = f"{self.public_url}/"
            else:
                probe = self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + _PROBE_KEY},
                    ExpiresIn=60)
                self._url_base = probe.split("?", 1)[0][: -len(_PROBE_KEY)]
        bare = url.split("?", 1)[0].split("#", 1)[0]
        if not bare.startswith(self._url_base):
            return None
        key = unquote(bare[len(self._url_base):])
        return key if is_safe_key(key) else None
