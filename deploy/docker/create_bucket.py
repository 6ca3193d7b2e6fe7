#!/usr/bin/env python3
"""`roomrender-create-bucket`: create the bucket of ROOMRENDER_STORAGE_URL (s3://bucket/prefix) if
it is missing, waiting up to 120 s for the store to answer. For compose's one-shot `bucket`
service; with AWS S3 or a managed store, create the bucket yourself (docs/deploy.md) and drop it.
The endpoint and credentials are the usual AWS settings (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID...).
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def main() -> int:
    url = os.environ.get("ROOMRENDER_STORAGE_URL", "")
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        print(f"ROOMRENDER_STORAGE_URL is {url!r}, not s3://bucket/prefix: nothing to create")
        return 0
    bucket = parsed.netloc
    client = boto3.client("s3")
    deadline = time.monotonic() + float(os.environ.get("ROOMRENDER_BUCKET_WAIT_SECONDS", "120"))
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            print(f"bucket {bucket} exists")
            return 0
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
                continue
        except BotoCoreError:  # the store is not answering yet
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
            continue
        region = client.meta.region_name
        options = ({"CreateBucketConfiguration": {"LocationConstraint": region}}
                   if region and region != "us-east-1" else {})
        client.create_bucket(Bucket=bucket, **options)
        print(f"created bucket {bucket}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
