"""Opt-in presigned S3 URLs for the gallery's images (issue 25): off by default, short-lived."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from airflow_provider_aihubmix.gallery.app import MAX_PRESIGNED_SECONDS, _presigned, presigned_url_seconds
from airflow_provider_aihubmix.storage import LocalObjectStore, open_store
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore
from tests.fixtures.s3 import S3Bucket

SETTING = "AIRFLOW__AIHUBMIX__GALLERY_PRESIGNED_URL_SECONDS"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63f8cfc0f01f0005000201a5d1e9a50000000049454e44ae426082"
)


def test_presigned_urls_are_off_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    assert presigned_url_seconds() == 0
    monkeypatch.setenv(SETTING, "999999")
    assert presigned_url_seconds() == MAX_PRESIGNED_SECONDS
    # A store that cannot sign streams as before.
    assert _presigned(LocalObjectStore(tmp_path.as_uri()), "a/image-000.png") is None


def test_an_s3_image_redirects_to_a_short_lived_presigned_url(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(s3_bucket.uri)
    assert isinstance(store, S3ObjectStore)
    stored = store.put_image_bytes("p/image-000", PNG, metadata={})
    monkeypatch.delenv(SETTING, raising=False)
    assert _presigned(store, stored.key) is None
    monkeypatch.setenv(SETTING, "60")
    redirect = _presigned(store, stored.key)
    assert redirect is not None and redirect.status_code == 307
    url = redirect.headers["location"]
    assert "Signature" in url  # SigV4 or V2 query auth, as the connection's client signs
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:
        assert query["X-Amz-Expires"] == ["60"]
    else:
        assert 0 < int(query["Expires"][0]) - time.time() <= 61
    assert httpx.get(url).content == PNG
    # Refusing an expired URL is S3's part: moto's server does not check expiry (no auth), so
    # this test pins the lifetime written into the signature, not the refusal.
