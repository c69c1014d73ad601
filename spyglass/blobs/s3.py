"""Images as objects in one bucket of an S3-compatible store (AWS, Ceph RGW, MinIO, Swift's s3api),
through boto3.

A blob no larger than `S3Config.part_size` is kept in memory and PUT as one object at commit. A
larger one becomes a multipart upload: each part is uploaded, in a worker thread, as soon as it is
full while the writer fills the next, so an upload holds at most two parts in memory. Commit
completes the upload; abort aborts it (the store drops the parts). Nothing is visible under the key
before commit.

Reads are ranged GETs. botocore errors become BlobNotFound, BlobStoreFull or OSError here and
nowhere else.
"""

from __future__ import annotations

import errno
import functools
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import boto3
import urllib3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from spyglass.blobs.base import BlobNotFound, BlobStoreFull
from spyglass.blobs.configs import MiB, S3Config

READ_CHUNK = MiB
LISTING_PAGE = 1000
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
FULL_CODES = frozenset({"EntityTooLarge", "QuotaExceeded", "InsufficientStorage", "413", "507"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


@contextmanager
def _s3_errors(key: str, *, missing_is_not_found: bool = True) -> Iterator[None]:
    """The driver boundary: no botocore or urllib3 exception gets past it."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if missing_is_not_found and (code in NOT_FOUND_CODES or _status(exc) == 404):
            raise BlobNotFound(key) from exc
        if code in FULL_CODES or _status(exc) in (413, 507):
            raise BlobStoreFull(errno.ENOSPC, f"s3 refused {key!r}: {code}") from exc
        raise OSError(errno.EIO, f"s3: {exc}") from exc
    except (BotoCoreError, urllib3.exceptions.HTTPError) as exc:
        raise OSError(errno.EIO, f"s3: {exc}") from exc


def _client(config: S3Config) -> Any:
    botocore_config = Config(
        region_name=config.region,
        s3={"addressing_style": "path" if config.path_style else "auto"},
        retries={"max_attempts": config.retries + 1, "mode": "standard"},
        connect_timeout=config.timeout,
        read_timeout=config.timeout,
        max_pool_connections=32,
        request_checksum_calculation=config.request_checksum_calculation,
    )
    with _session_lock:  # a boto3 session is not thread-safe; its clients are
        return _session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=config.access_key,
            aws_secret_access_key=config.secret_key,
            config=botocore_config,
            verify=config.cacert or not config.insecure,
        )


_session_lock = threading.Lock()


@functools.cache
def _session() -> Any:
    # One session for every store: it loads the S3 service model once, not once per client.
    return boto3.session.Session()


class S3Writer:
    def __init__(self, store: S3Store, key: str) -> None:
        self._client = store.client
        self._bucket = store.config.bucket
        self._part_size = store.config.part_size
        self._key = key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        self._closed = False

    def write(self, data: bytes | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a committed or aborted blob writer")
        view = memoryview(data)
        while view:
            if len(self._buffer) == self._part_size:
                # Only now, with more data coming, is the blob bigger than one part: a blob of
                # exactly part_size bytes still goes as one PUT. The full buffer becomes the part.
                self._send_part(self._buffer)
                self._buffer = bytearray()
            room = self._part_size - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]

    def _send_part(self, part: bytearray) -> None:
        self._wait()
        with _s3_errors(self._key, missing_is_not_found=False):
            if self._upload_id is None:
                created = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
                self._upload_id = str(created["UploadId"])
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-part")
        assert self._executor is not None
        self._pending = self._executor.submit(self._upload_part, len(self._parts) + 1, part)

    def _upload_part(self, number: int, part: bytearray) -> None:
        with _s3_errors(self._key, missing_is_not_found=False):
            answer = self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=part
            )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def commit(self) -> None:
        if self._closed:
            raise ValueError("commit of a committed or aborted blob writer")
        try:
            if self._upload_id is None:
                with _s3_errors(self._key, missing_is_not_found=False):
                    self._client.put_object(Bucket=self._bucket, Key=self._key, Body=self._buffer)
            else:
                self._send_part(self._buffer)
                self._wait()
                with _s3_errors(self._key, missing_is_not_found=False):
                    self._client.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
                self._upload_id = None
        except BaseException:
            self.abort()
            raise
        self._close()

    def abort(self) -> None:
        with suppress(Exception):  # the part goes with the upload
            self._wait()
        upload_id, self._upload_id = self._upload_id, None
        self._close()
        if upload_id is not None:
            try:
                with _s3_errors(self._key):
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=self._key, UploadId=upload_id
                    )
            except BlobNotFound:
                pass  # NoSuchUpload: already gone

    def _close(self) -> None:
        self._closed = True
        self._buffer = bytearray()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None


class S3Store:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.name = config.name
        self.client = _client(config)
        self._bucket_ready = False

    def writer(self, key: str) -> S3Writer:
        if not key:
            raise ValueError("empty blob key")
        self._ensure_bucket()
        return S3Writer(self, key)

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        bucket = self.config.bucket
        location = {}
        if self.config.region != "us-east-1":  # the one region S3 wants no constraint for
            location = {"CreateBucketConfiguration": {"LocationConstraint": self.config.region}}
        with _s3_errors(bucket, missing_is_not_found=False):
            try:
                # Look first: credentials allowed to write a bucket may not be allowed to create one.
                self.client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
                try:
                    self.client.create_bucket(Bucket=bucket, **location)
                except ClientError as again:
                    if _code(again) != "BucketAlreadyOwnedByYou":  # created meanwhile
                        raise
        self._bucket_ready = True

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            self.size(key)  # BlobNotFound for a missing blob, even for an empty range
            return iter(())
        ranged = {}
        if start or end is not None:
            ranged = {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
        with _s3_errors(key):
            try:
                answer = self.client.get_object(Bucket=self.config.bucket, Key=key, **ranged)
            except ClientError as exc:
                if _code(exc) != "InvalidRange":
                    raise
                return iter(())  # the range starts past the end
        return self._stream(key, answer["Body"])

    def _stream(self, key: str, body: Any) -> Iterator[bytes]:
        try:
            with _s3_errors(key):
                yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()

    def size(self, key: str) -> int:
        with _s3_errors(key):
            answer = self.client.head_object(Bucket=self.config.bucket, Key=key)
        return int(answer["ContentLength"])

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, key: str) -> None:
        try:
            with _s3_errors(key):
                self.client.delete_object(Bucket=self.config.bucket, Key=key)
        except BlobNotFound:
            pass  # no bucket: nothing was ever stored

    def iter_keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, PaginationConfig={"PageSize": LISTING_PAGE}
        )
        try:
            with _s3_errors(self.config.bucket):
                for page in pages:
                    for entry in page.get("Contents", ()):
                        yield entry["Key"]
        except BlobNotFound:
            return
