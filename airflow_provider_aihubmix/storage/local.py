"""``file://`` store: the embedded default, and what ``aihubmix-sandbox`` demos write to."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import IO, Any

from airflow_provider_aihubmix.exceptions import AIHubMixStorageError, InvalidOutputURIError
from airflow_provider_aihubmix.storage.base import (
    HashingWriter,
    ObjectStore,
    OnStored,
    StoredObject,
    build_metadata,
    dump_json,
)
from airflow_provider_aihubmix.storage.keys import check_key
from airflow_provider_aihubmix.storage.lineage import record_asset
from airflow_provider_aihubmix.storage.uris import file_uri_to_path, parse_output_uri, path_to_file_uri


class LocalObjectStore(ObjectStore):
    """
    Objects as files under a directory.

    Every write goes to a hidden temporary file in the target directory, is fsynced and then renamed
    over the final name, so a crash or a failed stream never leaves a partial file under a real name.
    JSON documents also fsync their directory (the rename is durable when ``write_json`` returns);
    an image's rename is made durable by the manifest written after it in the same directory (see
    ``put_image``). Object metadata is not kept beside local files: the manifest records it.
    """

    def __init__(self, output_uri: str) -> None:
        location = parse_output_uri(output_uri)
        if location.scheme != "file":
            raise InvalidOutputURIError(f"output_uri {output_uri!r} is not a file:// URI")
        self.base_dir = location.path
        self.base_uri = location.uri

    def __repr__(self) -> str:
        return f"LocalObjectStore({self.base_uri!r})"

    def path_for(self, key: str) -> str:
        """Absolute path of ``key`` (checked: it cannot leave the base directory)."""
        return os.path.join(self.base_dir, *check_key(key).split("/"))

    def uri_for(self, key: str) -> str:
        return path_to_file_uri(self.path_for(key))

    def key_for(self, uri: str) -> str:
        path = os.path.normpath(file_uri_to_path(uri))
        relative = os.path.relpath(path, self.base_dir)
        if relative == "." or relative.startswith(".." + os.sep) or relative == "..":
            raise InvalidOutputURIError(f"{uri!r} is not under output_uri {self.base_uri!r}")
        return check_key(relative.replace(os.sep, "/"))

    def _resolve(self, uri_or_key: str) -> str:
        if "://" in uri_or_key:
            return file_uri_to_path(uri_or_key)
        return self.path_for(uri_or_key)

    def put_image(
        self,
        key_stem: str,
        chunks: Iterable[bytes],
        *,
        metadata: Mapping[str, str],
        expected_size: int | None = None,
        max_bytes: int | None = None,
        on_stored: OnStored | None = None,
    ) -> StoredObject:
        stem_path = self.path_for(key_stem)
        directory = os.path.dirname(stem_path)
        os.makedirs(directory, exist_ok=True)
        tmp_path = _temp_name(stem_path)
        try:
            # Created with 0o666 so the umask applies, as for any file the worker writes.
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as handle:
                writer = HashingWriter(handle, max_bytes=max_bytes, what=f"image {key_stem!r}")
                writer.write_all(chunks)
                writer.check_size(expected_size)
                info = writer.image_info()
                handle.flush()
                os.fsync(handle.fileno())
            final_path = f"{stem_path}.{info.extension}"
            os.replace(tmp_path, final_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
            raise
        # No directory fsync here: the rename is made durable by the manifest write that records
        # the image. An image's key is ``<prefix>/image-NNN.<ext>`` and its manifest
        # ``<prefix>/manifest.json``, the same directory (storage.keys), and every caller writes
        # that manifest after put_image returns and before the image counts as stored:
        # ImageCollector.finish_received saves ``records`` (progress after each image, then
        # ``complete``) through ManifestLedger.save -> write_json, and keep_earlier writes the
        # earlier folder's manifest after copying its images. write_json fsyncs the manifest, renames
        # it and fsyncs this directory, which makes every earlier rename in it durable too. So:
        # * a crash after that manifest is durable finds each image it records durable (data fsynced
        #   above before the rename; the rename covered by the manifest's directory fsync);
        # * a crash before it leaves the previous manifest, which does not record this image: the
        #   image may or may not be there, as for a crash during its own write. A retry stores the
        #   unrecorded image again (verified_object checks any leftover against ``received``'s
        #   sha256; a URL is downloaded again; an inline image that is gone is refused as possibly
        #   billed, never bought twice). The window in which an unrecorded but stored image can
        #   still vanish grows by one manifest write; a recorded image can never be missing.
        # A leftover hidden ``.part`` file is never listed (list_keys) nor read as an object.
        written = os.stat(final_path).st_size
        if written != writer.size:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(final_path)
            raise AIHubMixStorageError(
                f"verification failed for {final_path}: {written} bytes on disk, {writer.size} written"
            )
        key = f"{key_stem}.{info.extension}"
        stored = StoredObject.of_image(
            self.uri_for(key),
            key,
            info,
            size=writer.size,
            sha256=writer.sha256,
            metadata=build_metadata(metadata, sha256=writer.sha256),
        )
        record_asset(
            "output",
            self,
            stored.uri,
            {"content_type": stored.content_type, "sha256": stored.sha256, "bytes": stored.bytes},
        )
        if on_stored is not None:
            with open(final_path, "rb") as reader:
                on_stored(stored, reader)
        return stored

    def put_image_bytes(self, key_stem: str, data: bytes, *, metadata: Mapping[str, str]) -> StoredObject:
        return self.put_image(key_stem, (data,), metadata=metadata, expected_size=len(data))

    def write_json(self, key: str, obj: Any) -> str:
        path = self.path_for(key)
        directory = os.path.dirname(path)
        payload = dump_json(obj)
        os.makedirs(directory, exist_ok=True)
        tmp_path = _temp_name(path)
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_path, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
            raise
        _fsync_dir(directory)
        return self.uri_for(key)

    def create_json(self, key: str, obj: Any) -> bool:
        """Create ``key`` only if absent: the document is written and fsynced under a hidden temporary
        name, then hard-linked to ``key`` (``link`` fails with ``EEXIST`` when the name is taken, as
        ``O_EXCL`` does, on a local disk and on NFS), so a reader never sees a partial document."""
        path = self.path_for(key)
        directory = os.path.dirname(path)
        payload = dump_json(obj)
        os.makedirs(directory, exist_ok=True)
        tmp_path = _temp_name(path)
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp_path, path)
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
        _fsync_dir(directory)
        return True

    def read_json(self, key: str) -> Any | None:
        try:
            with open(self.path_for(key), "rb") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path_for(key))

    def open_read(self, uri_or_key: str) -> AbstractContextManager[IO[bytes]]:
        return _open_file(self._resolve(uri_or_key))

    def list_keys(self, prefix: str) -> list[str]:
        root = self.path_for(prefix)
        keys = []
        for directory, _, files in os.walk(root):
            for name in files:
                if not name.startswith("."):  # in-flight temporary files are hidden
                    relative = os.path.relpath(os.path.join(directory, name), self.base_dir)
                    keys.append(relative.replace(os.sep, "/"))
        return sorted(keys)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_for(key))

    def link_for(self, uri: str) -> str:
        return file_uri_to_path(uri)


@contextlib.contextmanager
def _open_file(path: str) -> Iterator[IO[bytes]]:
    with open(path, "rb") as handle:
        yield handle


def _temp_name(final_path: str) -> str:
    # Hidden and unique: never mistaken for an object, never shared by two writers.
    directory, name = os.path.split(final_path)
    return os.path.join(directory, f".{name}.{secrets.token_hex(6)}.part")


def _fsync_dir(directory: str) -> None:
    # Makes the rename durable; some file systems refuse fsync on a directory, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["LocalObjectStore"]
