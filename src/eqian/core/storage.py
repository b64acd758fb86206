"""Blob storage for attachments: files under ``var/attachments`` or an S3-compatible store.

Keys are made by :func:`new_key` (a short prefix, the date and a random token) and checked by
:func:`validate_key` on every call, so a key can never name a path outside the store: no user
text ever becomes part of a key. The local store writes to a temporary file in the same
directory, flushes it to disk and renames it into place, so a reader sees a whole file or none.
The S3 store talks to any S3-compatible server (MinIO, Ceph, AWS) through ``boto3`` (the optional
``s3`` extra), each blocking call in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from eqian.core.config import Settings

# prefix/YYYY/MM/DD/token: lower-case ASCII, digits, "_" and "-" only; no "..", no absolute paths.
_KEY = re.compile(r"[a-z0-9_-]{1,32}(/[0-9]{4}/[0-9]{2}/[0-9]{2})?/[A-Za-z0-9_-]{16,64}")
_PREFIX = re.compile(r"[a-z0-9_-]{1,32}")


class InvalidKey(ValueError):
    """A key that this module did not make (or could not have made)."""


def new_key(prefix: str, *, today: dt.date | None = None) -> str:
    """A fresh, unguessable key such as ``messaging/2026/11/23/Xk3…``."""
    if not _PREFIX.fullmatch(prefix):
        raise InvalidKey(f"bad key prefix: {prefix!r}")
    day = today or dt.datetime.now(dt.UTC).date()
    return f"{prefix}/{day:%Y/%m/%d}/{secrets.token_urlsafe(24)}"


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidKey(f"invalid storage key: {key!r}")
    return key


def sniff_content_type(data: bytes) -> str | None:
    """The type of a PNG, JPEG or PDF from its first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes:
        """The stored bytes; ``FileNotFoundError`` when there are none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; deleting an absent key is not an error."""
        ...


class LocalStorage:
    """Files under one root directory (``var/attachments``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        root = self.root.resolve()
        if not path.is_relative_to(root):  # cannot happen with a valid key; defence in depth
            raise InvalidKey(f"key escapes the store: {key!r}")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _get(self, key: str) -> bytes:
        return self.path_for(key).read_bytes()

    def _delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)


class S3Storage:
    """A bucket of an S3-compatible server; needs ``boto3`` (``pip install eqian[s3]``)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        if client is None:
            try:
                boto3 = importlib.import_module("boto3")  # the optional ``s3`` extra
            except ImportError as exc:  # pragma: no cover - depends on the installation
                raise RuntimeError("EQIAN_STORAGE_BACKEND=s3 needs boto3: pip install 'eqian[s3]'") from exc
            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region,
            )
        self.client = client

    def _get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=validate_key(key))
        except self.client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(key) from exc
        except Exception as exc:  # botocore's ClientError for 404 on some servers
            if _status(exc) == 404:
                raise FileNotFoundError(key) from exc
            raise
        body: bytes = response["Body"].read()
        return body

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        # A single PUT is atomic on S3: readers see the old object, the new one, or none.
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=validate_key(key),
            Body=data,
            ContentType=content_type,
        )

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=validate_key(key))


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def storage_from(settings: Settings) -> Storage:
    """The store the settings ask for."""
    if settings.storage_backend == "s3":
        if not settings.s3_bucket:
            raise RuntimeError("EQIAN_STORAGE_BACKEND=s3 needs EQIAN_S3_BUCKET")
        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
        )
    return LocalStorage(settings.var_dir / "attachments")
