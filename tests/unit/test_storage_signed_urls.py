"""Which credentials sign a presigned URL on GCS and Azure, without the emulators (issue 25)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from airflow_provider_aihubmix.storage.azure import AzureBlobObjectStore
from airflow_provider_aihubmix.storage.gcs import GCSObjectStore

KEY = "dag_id=d/run_id=r/task_id=t/map_index=0/image-000.png"


class MetadataCredentials:
    """What GCE/GKE metadata credentials look like: no private key, an account and a token."""

    service_account_email = "runner@project.iam.gserviceaccount.com"
    token = "ya29.token"
    valid = True


def test_gcs_metadata_credentials_sign_through_iam() -> None:
    client = mock.Mock(_credentials=MetadataCredentials())
    client._connection.API_BASE_URL = "https://storage.googleapis.com"
    store = GCSObjectStore("gs://bucket/images", client=client)
    blob = client.bucket.return_value.blob.return_value
    blob.generate_signed_url.return_value = "https://storage.googleapis.com/bucket/x?X-Goog-Signature=s"
    assert store.presigned_url(KEY, 120) == blob.generate_signed_url.return_value
    client.bucket.return_value.blob.assert_called_once_with(f"images/{KEY}")
    kwargs: dict[str, Any] = blob.generate_signed_url.call_args.kwargs
    assert kwargs["version"] == "v4" and kwargs["method"] == "GET"
    assert kwargs["expiration"].total_seconds() == 120
    assert kwargs["service_account_email"] == MetadataCredentials.service_account_email
    assert kwargs["access_token"] == "ya29.token"
    assert "api_access_endpoint" not in kwargs  # the public endpoint is the library's default


def test_azure_with_a_sas_connection_streams() -> None:
    client = mock.Mock(credential=mock.Mock(spec=["signature"]))  # AzureSasCredential: no key, no token
    assert AzureBlobObjectStore("abfs://assets/images", client=client).presigned_url(KEY, 60) is None


def test_azure_entra_credentials_sign_with_a_user_delegation_key() -> None:
    from azure.storage.blob import UserDelegationKey

    delegation = UserDelegationKey()
    delegation.signed_oid, delegation.signed_tid = "oid", "tid"
    delegation.signed_start, delegation.signed_expiry = "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z"
    delegation.signed_service, delegation.signed_version = "b", "2025-01-05"
    delegation.value = "a2V5"  # base64 of the key
    client = mock.Mock(credential=mock.Mock(spec=["get_token"]))
    client.get_user_delegation_key.return_value = delegation
    blob = client.get_blob_client.return_value
    blob.account_name, blob.url = "acct", f"https://acct.blob.core.windows.net/assets/images/{KEY}"
    url = AzureBlobObjectStore("abfs://assets/images", client=client).presigned_url(KEY, 60)
    assert url is not None and url.startswith(blob.url + "?")
    assert "skoid=oid" in url and "sp=r" in url and "sig=" in url
    start, expiry = client.get_user_delegation_key.call_args.args
    assert 60 <= (expiry - start).total_seconds() <= 60 + 300 + 1
