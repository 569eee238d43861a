"""Presigned image URLs on GCS and Azure (the gallery's opt-in, issue 25), against the emulators.

Azurite checks a SAS like Azure: its signature, its blob and its expiry, so the refusals are
tested here. fake-gcs-server checks no signature: the GCS tests pin what the URL carries
(V4 query auth, lifetime) and that the object it names is served.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from airflow_provider_aihubmix.gallery.app import _presigned
from airflow_provider_aihubmix.storage import open_store, task_prefix
from airflow_provider_aihubmix.storage.azure import AzureBlobObjectStore
from airflow_provider_aihubmix.storage.gcs import GCSObjectStore
from tests.fixtures.clouds import AzureContainer, GCSBucket
from tests.integration.test_storage_s3 import make_image

PREFIX = task_prefix("marketing", "manual__1", "generate", 0)
SETTING = "AIRFLOW__AIHUBMIX__GALLERY_PRESIGNED_URL_SECONDS"


def _stored(store: Any) -> tuple[str, bytes]:
    data = make_image("PNG", (32, 24))
    return store.put_image_bytes(f"{PREFIX}/image-000", data, metadata={}).key, data


def test_azure_sas_reads_the_blob_and_is_refused_once_expired(azure_container: AzureContainer) -> None:
    store = open_store(azure_container.uri, sleep=lambda _s: None)
    assert isinstance(store, AzureBlobObjectStore)
    key, data = _stored(store)

    url = store.presigned_url(key, 60)
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["sp"] == ["r"]  # read only
    assert httpx.get(url).content == data
    # The signature names the blob: the same SAS on another blob of the container is refused.
    other_key = store.put_image_bytes(f"{PREFIX}/image-001", make_image("PNG", (8, 8)), metadata={}).key
    forged = url.replace(key.rsplit("/", 1)[1], other_key.rsplit("/", 1)[1])
    assert forged != url and httpx.get(forged).status_code == 403
    # Write with a read SAS: refused.
    assert httpx.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"}).status_code == 403

    short = store.presigned_url(key, 1)
    assert short is not None and httpx.get(short).status_code == 200
    time.sleep(2.2)
    expired = httpx.get(short)
    assert expired.status_code == 403, expired.text


def test_azure_without_a_key_streams(azure_container: AzureContainer) -> None:
    from azure.storage.blob import BlobServiceClient

    # A client with no credential at all (anonymous): nothing to sign with.
    endpoint = azure_container.client.url
    store = AzureBlobObjectStore(azure_container.uri, client=BlobServiceClient(endpoint))
    assert store.presigned_url(f"{PREFIX}/image-000.png", 60) is None


def test_gallery_redirects_an_azure_image_only_when_switched_on(
    azure_container: AzureContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(azure_container.uri, sleep=lambda _s: None)
    key, data = _stored(store)
    monkeypatch.delenv(SETTING, raising=False)
    assert _presigned(store, key) is None
    monkeypatch.setenv(SETTING, "30")
    redirect = _presigned(store, key)
    assert redirect is not None and redirect.status_code == 307
    assert redirect.headers["cache-control"] == "private, no-store"
    assert httpx.get(redirect.headers["location"]).content == data


def _service_account_client(endpoint: str) -> Any:
    """A storage client with a service-account key made for the test (the emulator checks none)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.cloud import storage
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "project_id": "aihubmix-test",
            "private_key_id": "test",
            "private_key": pem,
            "client_email": "gallery@aihubmix-test.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    return storage.Client(
        project="aihubmix-test", credentials=credentials, client_options={"api_endpoint": endpoint}
    )


def test_gcs_signs_a_v4_url_with_a_service_account_key(gcs_bucket: GCSBucket, gcs_server: str) -> None:
    writer = open_store(gcs_bucket.uri, sleep=lambda _s: None)
    key, data = _stored(writer)
    store = GCSObjectStore(gcs_bucket.uri, client=_service_account_client(gcs_server))
    url = store.presigned_url(key, 60)
    assert url is not None and url.startswith(gcs_server)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == ["60"]
    assert query["X-Goog-Credential"][0].startswith("gallery@aihubmix-test.iam.gserviceaccount.com/")
    assert "X-Goog-Signature" in query
    assert unquote(urlsplit(url).path) == f"/{gcs_bucket.name}/images/{key}"
    assert httpx.get(url).content == data  # the emulator serves the object the URL names


def test_gcs_with_anonymous_credentials_streams(
    gcs_bucket: GCSBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(gcs_bucket.uri, sleep=lambda _s: None)
    assert isinstance(store, GCSObjectStore)
    key, _ = _stored(store)
    assert store.presigned_url(key, 60) is None
    monkeypatch.setenv(SETTING, "30")
    assert _presigned(store, key) is None  # the gallery streams it instead
