"""Where a streamed image waits for its S3 upload: bounded memory, then a named temporary file."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any, cast

from airflow_provider_aihubmix.storage.base import SPOOL_MEMORY_BYTES, HashingWriter, OnStored, StoredObject
from airflow_provider_aihubmix.storage.sniff import ImageInfo


class ImageSpool:
    """
    Where a streamed image waits for its upload: in RAM up to ``max_memory`` bytes, then in a named
    temporary file.

    Unlike ``SpooledTemporaryFile`` it never copies its buffer on rollover, and the file has a name,
    which lets boto3 stream multipart parts from disk (``upload_file``) instead of holding them in
    memory (``upload_fileobj``).
    """

    def __init__(self, max_memory: int = SPOOL_MEMORY_BYTES) -> None:
        self._max_memory = max_memory
        self._buffer: bytes | bytearray = bytearray()
        self._file: IO[bytes] | None = None
        self.path: str | None = None

    @classmethod
    def of_bytes(cls, data: bytes) -> ImageSpool:
        """A spool over bytes already in memory (no copy)."""
        spool = cls(len(data))
        spool._buffer = data
        return spool

    def write(self, chunk: bytes | bytearray | memoryview) -> int:
        if self._file is None and len(self._buffer) + len(chunk) <= self._max_memory:
            cast("bytearray", self._buffer).extend(chunk)
            return len(chunk)
        if self._file is None:
            # Closed and removed in close(), which the store always reaches through ``with``.
            handle = tempfile.NamedTemporaryFile(prefix="aihubmix-", suffix=".part", delete=False)  # noqa: SIM115
            self._file, self.path = handle, handle.name
            handle.write(self._buffer)
            self._buffer = bytearray()
        assert self._file is not None
        self._file.write(chunk)
        return len(chunk)

    def finish(self) -> None:
        """Flush to disk so ``path`` holds every byte written."""
        if self._file is not None:
            self._file.flush()

    def reader(self) -> IO[bytes]:
        """A new seekable reader over every byte written (call :meth:`finish` first): the file on
        disk once the spool rolled over, else the in-memory bytes (no copy)."""
        if self.path is not None:
            return open(self.path, "rb")
        return cast("IO[bytes]", _MemoryReader(self._buffer))

    def md5(self) -> bytes:
        """The MD5 digest of every byte written (call :meth:`finish` first), read back in 1 MiB
        blocks: what stores that verify MD5 (GCS ``md5Hash``, Azure and S3 ``Content-MD5``) check."""
        digest = hashlib.md5(usedforsecurity=False)
        with self.reader() as reader:
            while block := reader.read(1 << 20):
                digest.update(block)
        return digest.digest()

    def close(self) -> None:
        self._buffer = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None

    def __enter__(self) -> ImageSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def put_spooled(
    chunks: Iterable[bytes],
    store_spool: Callable[[ImageSpool, ImageInfo, int, str], StoredObject],
    *,
    key_stem: str,
    memory: int,
    expected_size: int | None,
    max_bytes: int | None,
    on_stored: OnStored | None,
) -> StoredObject:
    """``ObjectStore.put_image`` for the stores that upload from a spool (S3, GCS, Azure): the
    stream is hashed and sniffed into an :class:`ImageSpool` of ``memory`` bytes in RAM, its size
    checked, then ``store_spool(spool, info, size, sha256_hex)`` stores it, and ``on_stored`` gets
    a reader of the spool before it is dropped."""
    with ImageSpool(memory) as spool:
        writer = HashingWriter(cast("IO[bytes]", spool), max_bytes=max_bytes, what=f"image {key_stem!r}")
        writer.write_all(chunks)
        writer.check_size(expected_size)
        spool.finish()
        stored = store_spool(spool, writer.image_info(), writer.size, writer.sha256)
        if on_stored is not None:
            with spool.reader() as reader:
                on_stored(stored, reader)
        return stored


class _MemoryReader(io.RawIOBase):
    """A seekable, read-only file over a buffer, without the copy ``BytesIO`` makes of a bytearray."""

    def __init__(self, buffer: bytes | bytearray) -> None:
        super().__init__()
        self._view = memoryview(buffer)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(target)]
        target[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        data = self._view[self._pos : end].tobytes()
        self._pos = max(self._pos, end)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        super().close()
        self._view.release()


class NullSink:
    """A write target for ``HashingWriter`` when the bytes are already in memory."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return len(data)


__all__ = [
    "ImageSpool",
    "NullSink",
    "put_spooled",
]
