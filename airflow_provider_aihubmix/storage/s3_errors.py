"""What an S3 error means to the store: retry it, a missing object, or checksum headers refused.

botocore is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from airflow_provider_aihubmix.exceptions import StoredObjectMismatchError

# Error codes S3 (or a proxy in front of it) returns for conditions that pass within seconds.
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequestsException",
        "OperationAborted",
        # The store computed another checksum than the one sent: the body was corrupted on the way.
        "BadDigest",
        "XAmzContentSHA256Mismatch",
        "500",
        "502",
        "503",
        "504",
    }
)
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a failure that retrying in a few seconds can cure."""
    from botocore.exceptions import (
        ChecksumError,
        ClientError,
        HTTPClientError,
        IncompleteReadError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoredObjectMismatchError):
            return True
        if isinstance(current, (BotoConnectionError, HTTPClientError, IncompleteReadError, ChecksumError)):
            return True
        if isinstance(current, ClientError):
            code = str(current.response.get("Error", {}).get("Code", ""))
            status = int(current.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return code in _TRANSIENT_CODES or status >= 500 or status == 429
        current = current.__cause__ or current.__context__
    return False


def describe(exc: BaseException) -> str:
    """``Code: Message`` of an S3 error, else the exception's type and text (for logs)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def is_missing(exc: BaseException) -> bool:
    """Whether ``exc`` says the object (or key) does not exist: 404 / ``NoSuchKey``."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _MISSING_CODES or status == 404


#: Error codes with which S3-compatible stores refuse checksum headers they do not implement.
CHECKSUM_REFUSAL_CODES = frozenset({"InvalidArgument", "InvalidRequest", "NotImplemented"})


def refuses_checksums(err: BaseException) -> bool:
    """Whether ``err`` (a botocore ``ClientError``) may be a store refusing the checksum headers:
    400/501 with one of :data:`CHECKSUM_REFUSAL_CODES`. Never ``BadDigest`` (that is corruption).
    The caller proves it by sending once more without them."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in CHECKSUM_REFUSAL_CODES and status in (400, 501)


__all__ = ["CHECKSUM_REFUSAL_CODES", "describe", "is_missing", "is_transient", "refuses_checksums"]
