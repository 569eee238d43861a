"""Parse and check ``output_uri`` values and the object URIs that go to XCom."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from airflow_provider_aihubmix.exceptions import InvalidOutputURIError

DEFAULT_LOCAL_DIR_NAME = "aihubmix-images"

# S3 bucket naming rules (lower-case letters, digits, dots and hyphens; 3-63 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# GCS bucket names: also '_' (https://cloud.google.com/storage/docs/buckets#naming); 3-63 characters.
_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
# Azure container names: lower-case letters, digits and single hyphens, 3-63 characters
# (https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata).
_AZURE_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_AZURE_HOST = re.compile(r"^[a-z0-9]{3,24}\.(blob|dfs)\.[a-z0-9.-]+$")
#: Azure Blob Storage schemes: Airflow's object storage (adlfs) names Azure ``abfs``/``abfss``;
#: ``wasb``/``wasbs`` is the Azure provider's (and Hadoop's) name for the same containers.
AZURE_SCHEMES = ("abfs", "abfss", "wasb", "wasbs")
#: Every scheme an ``output_uri`` (and a reference image read by the worker) may have.
OBJECT_SCHEMES = ("s3", "gs", *AZURE_SCHEMES)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters left unquoted in file:// URIs: our key alphabet plus the usual path characters.
_FILE_URI_SAFE = "/:+~=@,!$&'()*;"


@dataclass(frozen=True)
class OutputLocation:
    """A checked ``output_uri``: an S3 bucket and key prefix, or an absolute local directory."""

    #: ``s3``, ``gs``, an Azure scheme (``abfs``, ``abfss``, ``wasb``, ``wasbs``) or ``file``.
    scheme: Literal["s3", "gs", "abfs", "abfss", "wasb", "wasbs", "file"]
    #: Bucket (or Azure container) name; None for ``file``.
    bucket: str | None
    #: Object stores: key prefix without leading/trailing '/' ('' for the bucket root).
    #: ``file``: absolute directory path without a trailing '/'.
    path: str
    #: Azure only: the account host after '@' (``account.blob.core.windows.net``), if given.
    host: str | None = None

    @property
    def root(self) -> str:
        """``scheme://bucket`` (Azure: ``scheme://container[@host]``); for ``file`` the URI itself."""
        if self.scheme == "file":
            return path_to_file_uri(self.path)
        return f"{self.scheme}://{self.bucket}" + (f"@{self.host}" if self.host else "")

    @property
    def uri(self) -> str:
        """Canonical form of the URI (no trailing slash)."""
        if self.scheme == "file":
            return path_to_file_uri(self.path)
        return f"{self.root}/{self.path}" if self.path else self.root


def default_local_output_uri() -> str:
    """``file://$AIRFLOW_HOME/aihubmix-images``: where images go when nothing else is configured."""
    home: str = os.environ.get("AIRFLOW_HOME") or ""
    if not home:
        try:
            from airflow.configuration import AIRFLOW_HOME

            home = str(AIRFLOW_HOME)
        except ImportError:  # pragma: no cover - Airflow always provides it
            home = os.path.expanduser("~/airflow")
    return path_to_file_uri(os.path.join(os.path.abspath(os.path.expanduser(home)), DEFAULT_LOCAL_DIR_NAME))


def output_uri_text(value: Any) -> Any:
    """``output_uri`` as the provider reads it, and the connection an object-storage path names.

    An Airflow ``ObjectStoragePath`` (anything with a ``protocol`` and ``as_uri()``) becomes its URI
    (``s3://bucket/prefix``, ``file:///dir``; its ``conn_id`` is returned separately); a string or
    ``None`` is returned as given (a template is rendered later). Returns ``(uri, conn_id)``.
    Raises :class:`InvalidOutputURIError` naming ``output_uri`` for anything else.
    """
    if value is None or isinstance(value, str):
        return value, None
    as_uri = getattr(value, "as_uri", None)
    if getattr(value, "protocol", None) and callable(as_uri):
        return str(as_uri()), getattr(value, "conn_id", None) or None
    raise InvalidOutputURIError(
        f"Parameter 'output_uri' must be a string ('s3://bucket/prefix' or 'file:///dir') or an "
        f"ObjectStoragePath; got {type(value).__name__}"
    )


def resolve_output_uri(
    output_uri: str | None, connection_output_uri: str | None, conn_id: str
) -> tuple[str, str]:
    """Where images go and why: the parameter, else the connection's extra, else AIRFLOW_HOME."""
    if output_uri:
        return output_uri, "the output_uri parameter"
    if connection_output_uri:
        return connection_output_uri, f"connection {conn_id!r} extra output_uri"
    return default_local_output_uri(), "the default under AIRFLOW_HOME"


def path_to_file_uri(path: str) -> str:
    """``file://`` URI of an absolute path, percent-encoding only what a URI cannot hold."""
    return "file://" + quote(path, safe=_FILE_URI_SAFE)


def parse_output_uri(output_uri: str) -> OutputLocation:
    """
    Check and split ``output_uri`` (``s3://bucket/prefix`` or ``file:///abs/dir``).

    :raises InvalidOutputURIError: naming ``output_uri`` when the scheme is unsupported, the bucket or
        path is malformed, or any segment is ``..`` / ``.`` (before or after percent-decoding).
    """
    if not isinstance(output_uri, str) or not output_uri.strip():
        raise InvalidOutputURIError(
            f"output_uri must be 's3://bucket/prefix' or 'file:///dir', got {output_uri!r}"
        )
    raw = output_uri.strip()
    if _CONTROL.search(raw):
        raise InvalidOutputURIError(f"output_uri {raw!r} contains a control character")
    parts = urlsplit(raw, allow_fragments=False)
    scheme = parts.scheme.lower()
    if parts.query:
        raise InvalidOutputURIError(f"output_uri {raw!r} must not have a query string")
    if scheme == "s3":
        return _parse_s3(raw, parts.netloc, parts.path)
    if scheme == "gs":
        return _parse_bucket(raw, "gs", _GCS_BUCKET, "GCS bucket", parts.netloc, parts.path)
    if scheme in AZURE_SCHEMES:
        container, _, host = parts.netloc.partition("@")
        if host and not _AZURE_HOST.match(host.lower()):
            raise InvalidOutputURIError(
                f"output_uri {raw!r}: {host!r} is not an Azure storage host (account.blob.core.windows.net)"
            )
        location = _parse_bucket(raw, scheme, _AZURE_CONTAINER, "Azure container", container, parts.path)
        return OutputLocation(location.scheme, location.bucket, location.path, host.lower() or None)
    if scheme == "file":
        return _parse_file(raw, parts.netloc, parts.path)
    raise InvalidOutputURIError(
        f"output_uri {raw!r} has unsupported scheme {parts.scheme!r}: use 's3://bucket/prefix', "
        "'gs://bucket/prefix', 'abfs://container/prefix' (or wasb://) or 'file:///dir'"
    )


def _parse_s3(raw: str, bucket: str, path: str) -> OutputLocation:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidOutputURIError(f"output_uri {raw!r} has an invalid S3 bucket name {bucket!r}")
    prefix = path.strip("/")
    if "\\" in prefix:
        raise InvalidOutputURIError(f"output_uri {raw!r} must not contain '\\'")
    if prefix:
        _check_segments(raw, prefix.split("/"))
    return OutputLocation("s3", bucket, prefix)


def _parse_bucket(
    raw: str, scheme: Any, rule: re.Pattern[str], what: str, bucket: str, path: str
) -> OutputLocation:
    if not rule.match(bucket) or ".." in bucket:
        raise InvalidOutputURIError(f"output_uri {raw!r} has an invalid {what} name {bucket!r}")
    prefix = path.strip("/")
    if "\\" in prefix:
        raise InvalidOutputURIError(f"output_uri {raw!r} must not contain '\\'")
    if prefix:
        _check_segments(raw, prefix.split("/"))
    return OutputLocation(scheme, bucket, prefix)


def split_object_uri(uri: str) -> tuple[str, str, str]:
    """``scheme://bucket[@host]/key`` -> (scheme, root ``scheme://bucket[@host]``, key), key taken literally.

    :raises InvalidOutputURIError: when the scheme is not one of :data:`OBJECT_SCHEMES` or no bucket is named.
    """
    parts = urlsplit(uri, allow_fragments=False)
    scheme = parts.scheme.lower()
    if scheme not in OBJECT_SCHEMES or not parts.netloc:
        raise InvalidOutputURIError(f"not an object-store URI ({', '.join(OBJECT_SCHEMES)}): {uri!r}")
    key = parts.path.lstrip("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    netloc = parts.netloc
    if "@" in netloc:
        container, _, host = netloc.partition("@")
        netloc = f"{container}@{host.lower()}"
    return scheme, f"{scheme}://{netloc}", key


def _parse_file(raw: str, host: str, path: str) -> OutputLocation:
    if host not in ("", "localhost"):
        raise InvalidOutputURIError(
            f"output_uri {raw!r} names host {host!r}: use file:///absolute/dir (three slashes)"
        )
    decoded = unquote(path)
    if not decoded.startswith("/"):
        raise InvalidOutputURIError(f"output_uri {raw!r} must hold an absolute path: file:///absolute/dir")
    if "\x00" in decoded or _CONTROL.search(decoded):
        raise InvalidOutputURIError(f"output_uri {raw!r} contains a control character")
    stripped = decoded.rstrip("/")
    if not stripped:
        raise InvalidOutputURIError(f"output_uri {raw!r} must not be the file system root")
    # Check the raw segments too: a '%2e%2e' and a literal '..' are both refused.
    _check_segments(raw, path.strip("/").split("/"))
    _check_segments(raw, stripped.strip("/").split("/"))
    return OutputLocation("file", None, stripped)


def _check_segments(raw: str, segments: list[str]) -> None:
    for segment in segments:
        if segment in ("..", "."):
            raise InvalidOutputURIError(f"output_uri {raw!r} must not contain '{segment}' path segments")
        if segment == "":
            raise InvalidOutputURIError(f"output_uri {raw!r} must not contain empty path segments ('//')")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); the key is taken literally, as the amazon provider does."""
    parts = urlsplit(uri, allow_fragments=False)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise InvalidOutputURIError(f"not an s3:// URI: {uri!r}")
    key = parts.path.lstrip("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    return parts.netloc, key


def file_uri_to_path(uri: str) -> str:
    """``file:///abs/path`` → ``/abs/path`` (percent-decoded)."""
    parts = urlsplit(uri, allow_fragments=False)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        raise InvalidOutputURIError(f"not a local file:// URI: {uri!r}")
    path = unquote(parts.path)
    if not path.startswith("/") or "\x00" in path:
        raise InvalidOutputURIError(f"file:// URI must hold an absolute path: {uri!r}")
    return path


__all__ = [
    "AZURE_SCHEMES",
    "DEFAULT_LOCAL_DIR_NAME",
    "OBJECT_SCHEMES",
    "OutputLocation",
    "default_local_output_uri",
    "file_uri_to_path",
    "parse_output_uri",
    "path_to_file_uri",
    "split_object_uri",
    "split_s3_uri",
]
