"""
Azure Blob Storage store through the Microsoft Azure provider's ``WasbHook`` (``wasb_default``).

URIs: ``abfs://container/prefix`` (or ``abfss://``) -- the scheme Airflow's own object storage
(``ObjectStoragePath``, adlfs) uses for Azure, so a path a DAG already builds works unchanged --
and ``wasb://`` / ``wasbs://``, the Azure provider's and Hadoop's name for the same containers.
``container@account.blob.core.windows.net`` may name the account; the account reached is always
the connection's. azure-storage-blob and the provider are imported only when such a store is
opened (the ``[azure]`` extra).

Each call passes ``retry_total=0`` so the SDK's own retries (3 tries, 15 s apart) do not stack on
the store's S3 budget. The checksum checked after each upload is the blob's ``Content-MD5``, which
the service computes for a single-request upload (Put Blob) when none is sent; the SDK sends up to
its ``max_single_put_size`` (64 MiB by default, far above any generated image) as one request. A
larger image is uploaded in blocks without a Content-MD5 and verification refuses it, loudly.
The conditional create is ``If-None-Match: *`` (``overwrite=False``), answered 409
``BlobAlreadyExists`` when the blob exists.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import IO, Any, cast

from airflow_provider_aihubmix.storage.cloud import CloudObjectStore, ObjectFacts
from airflow_provider_aihubmix.storage.spool import ImageSpool

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_NO_SDK_RETRY: dict[str, Any] = {"retry_total": 0}

log = logging.getLogger(__name__)


class _ChunkReader(io.RawIOBase):
    """A read-only stream over a download's chunks (the gallery streams images through it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class AzureBlobObjectStore(CloudObjectStore):
    """
    Blobs in an Azure container under a prefix, through the Azure Blob connection ``conn_id``.

    :param output_uri: ``abfs://container/prefix`` (``abfss``, ``wasb``, ``wasbs`` alike).
    :param conn_id: Azure Blob Storage connection (default ``wasb_default``).
    :param client: a ready ``azure.storage.blob.BlobServiceClient`` instead of one from the connection.

    Object metadata names are C# identifiers on Azure: the '-' of the S3-style names becomes '_'.
    """

    schemes = ("abfs", "abfss", "wasb", "wasbs")
    service = "Azure Blob Storage"

    def __init__(self, output_uri: str, *, conn_id: str | None = "wasb_default", **options: Any) -> None:
        super().__init__(output_uri, conn_id=conn_id, **options)

    @property
    def client(self) -> Any:
        """``BlobServiceClient`` from ``WasbHook`` (account, credentials, endpoint)."""
        if self._client is None:
            from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

            self._client = WasbHook(wasb_conn_id=self.conn_id or "wasb_default").get_conn()
        return self._client

    def _blob(self, name: str, container: str | None = None) -> Any:
        return self.client.get_blob_client(container or self.bucket, name)

    def _upload(
        self, name: str, source: ImageSpool, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        from azure.storage.blob import ContentSettings

        with source.reader() as reader:
            self._blob(name).upload_blob(
                reader,
                overwrite=True,
                content_settings=ContentSettings(content_type=content_type),
                metadata={key.replace("-", "_"): value for key, value in metadata.items()},
                max_concurrency=1,
                **_NO_SDK_RETRY,
            )

    def _upload_bytes(self, name: str, body: bytes, *, content_type: str, if_absent: bool) -> bool:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        try:
            self._blob(name).upload_blob(
                body,
                overwrite=not if_absent,
                content_settings=ContentSettings(content_type=content_type),
                **_NO_SDK_RETRY,
            )
        except ResourceExistsError:
            if not if_absent:
                raise
            return False
        return True

    def _facts(self, name: str) -> ObjectFacts | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self._blob(name).get_blob_properties(**_NO_SDK_RETRY)
        except ResourceNotFoundError:
            return None
        md5 = props.content_settings.content_md5
        return ObjectFacts(size=int(props.size), md5=bytes(md5) if md5 else None)

    def _download(self, bucket: str, name: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return cast("bytes", self._blob(name, bucket).download_blob(**_NO_SDK_RETRY).readall())
        except ResourceNotFoundError:
            return None

    def _open(self, bucket: str, name: str) -> IO[bytes]:
        downloader = self._blob(name, bucket).download_blob(**_NO_SDK_RETRY)
        return cast("IO[bytes]", io.BufferedReader(_ChunkReader(iter(downloader.chunks()))))

    def _list(self, prefix: str) -> list[str]:
        container = self.client.get_container_client(self.bucket)
        return [blob.name for blob in container.list_blobs(name_starts_with=prefix, **_NO_SDK_RETRY)]

    def _delete(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self._blob(name).delete_blob(**_NO_SDK_RETRY)

    def is_transient(self, exc: BaseException) -> bool:
        """Connection failures and 408/429/5xx answers (azure-core's own retry rule)."""
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, (ServiceRequestError, ServiceResponseError, ConnectionError)):
                return True
            if isinstance(current, HttpResponseError):
                return int(current.status_code or 0) in _TRANSIENT_STATUS
            current = current.__cause__ or current.__context__
        return False

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        """The blob's URL with a read-only SAS valid ``expires_s`` seconds (Azure refuses it after:
        403 ``AuthenticationFailed``), or None when the connection cannot sign one.

        An account key (shared key, connection string) signs a service SAS; a Microsoft Entra
        credential signs a user delegation SAS, which needs the ``generateUserDelegationKey``
        permission (Storage Blob Delegator). Source: Azure Storage docs, "Grant limited access to
        data with shared access signatures".
        """
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        name = self.full_key(key)
        blob = self._blob(name)
        now = datetime.now(timezone.utc)
        expiry = now + timedelta(seconds=expires_s)
        sign: dict[str, Any] = {
            "account_name": blob.account_name,
            "container_name": self.bucket,
            "blob_name": name,
            "permission": BlobSasPermissions(read=True),
            "expiry": expiry,
        }
        credential = getattr(self.client, "credential", None)
        account_key = getattr(credential, "account_key", None)
        if account_key:
            sign["account_key"] = account_key
        elif credential is not None and hasattr(credential, "get_token"):
            try:
                sign["user_delegation_key"] = self.client.get_user_delegation_key(
                    now - timedelta(minutes=5), expiry, **_NO_SDK_RETRY
                )
            except Exception as err:  # not permitted, or not an Entra credential after all
                log.info("Azure: no user delegation key for %s (streamed instead): %s", key, err)
                return None
        else:
            return None  # a SAS connection or anonymous access: nothing to sign with
        return f"{blob.url}?{generate_blob_sas(**sign)}"

    def link_for(self, uri: str) -> str:
        """The blob's URL on the account (opening it needs the account's authorization)."""
        return cast("str", self._blob(self.key_name(uri)[1], self.key_name(uri)[0]).url)

    def key_name(self, uri: str) -> tuple[str, str]:
        """(container, blob name) of a URI of this store's kind."""
        bucket, name, _ = self._locate(uri)
        return bucket, name


__all__ = ["AzureBlobObjectStore"]
