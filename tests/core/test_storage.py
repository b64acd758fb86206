"""Attachment storage: local files (atomic, no path traversal) and a real S3-compatible server (moto)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eqian.core.config import Settings
from eqian.core.storage import (
    InvalidKey,
    LocalStorage,
    S3Storage,
    Storage,
    new_key,
    sniff_content_type,
    storage_from,
    validate_key,
)
from tests.servers import free_port

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def test_keys_are_generated_and_anything_else_is_refused() -> None:
    key = new_key("messaging", today=dt.date(2026, 11, 23))
    assert key.startswith("messaging/2026/11/23/")
    assert validate_key(key) == key
    assert new_key("messaging") != new_key("messaging")
    for bad in [
        "../etc/passwd",
        "messaging/../../secret_key",
        "/etc/passwd",
        "messaging/2026/11/23/short",
        "messaging/2026/11/23/" + "a" * 30 + "/../x",
        "Messaging/" + "a" * 32,
        "messaging/2026/11/23/" + "a" * 31 + "\n",
        "",
    ]:
        with pytest.raises(InvalidKey):
            validate_key(bad)
    with pytest.raises(InvalidKey):
        new_key("../up")


def test_sniffing_accepts_only_png_jpeg_pdf() -> None:
    assert sniff_content_type(PNG) == "image/png"
    assert sniff_content_type(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert sniff_content_type(PDF) == "application/pdf"
    assert sniff_content_type(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert sniff_content_type(b"MZ\x90\x00") is None
    assert sniff_content_type(b"") is None


async def _round_trip(store: Storage) -> None:
    key = new_key("test")
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    await store.put(key, PNG, "image/png")
    assert await store.get(key) == PNG
    await store.put(key, PDF, "application/pdf")  # overwrite replaces whole
    assert await store.get(key) == PDF
    await store.delete(key)
    await store.delete(key)  # deleting twice is fine
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    with pytest.raises(InvalidKey):
        await store.put("../../escape", PNG, "image/png")
    with pytest.raises(InvalidKey):
        await store.get("../../escape")


async def test_local_storage_round_trip_atomic_and_private(tmp_path: Path) -> None:
    store = storage_from(Settings(var_dir=tmp_path, storage_backend="local"))
    assert isinstance(store, LocalStorage)
    assert store.root == tmp_path / "attachments"
    await _round_trip(store)
    key = new_key("test")
    await store.put(key, PNG, "image/png")
    path = store.path_for(key)
    assert path.is_relative_to(tmp_path / "attachments")
    assert path.stat().st_mode & 0o077 == 0  # only the service account reads attachments
    # No temporary file is left beside it after the rename.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        pytest.skip("moto[server] and boto3 are dev/optional dependencies")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def test_s3_storage_against_a_real_s3_server(moto_endpoint: str) -> None:
    import boto3

    client: Any = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="eqian",
        aws_secret_access_key="eqian-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="eqian-attachments")
    settings = Settings(
        storage_backend="s3",
        s3_endpoint=moto_endpoint,
        s3_bucket="eqian-attachments",
        s3_access_key="eqian",
        s3_secret_key="eqian-secret",
    )
    store = storage_from(settings)
    assert isinstance(store, S3Storage)
    await _round_trip(store)
    key = new_key("messaging")
    await store.put(key, PNG, "image/png")
    head = client.head_object(Bucket="eqian-attachments", Key=key)
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(PNG)


def test_s3_needs_a_bucket() -> None:
    with pytest.raises(RuntimeError):
        storage_from(Settings(storage_backend="s3"))
