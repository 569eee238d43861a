"""The engine's decision table: what a task instance does given the manifest it finds.

A fake hook counts billable calls and downloads; the store is the real local store on
``tmp_path`` (fast, and what the manifest logic actually runs against).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.engine.events import EventStatus, TaskEvent
from airflow_provider_aihubmix.engine.manifest import ManifestStatus
from airflow_provider_aihubmix.engine.run import GenerationRun, TaskIdentity
from airflow_provider_aihubmix.exceptions import (
    AIHubMixBadRequestError,
    AIHubMixDownloadError,
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.responses.shapes import GeneratedImage, PredictionResult, TaskHandle
from airflow_provider_aihubmix.schemas.wire import WireRequest
from airflow_provider_aihubmix.storage import LocalObjectStore, StoredObject

SYNC_MODEL = resolve_model("imagen-4.0-fast-generate-001")
ASYNC_MODEL = resolve_model("flux-2-pro")


def png(colour: str, size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeDownload:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.content_length = len(data)

    def iter_bytes(self) -> Iterator[bytes]:
        yield self.data[: len(self.data) // 2]
        yield self.data[len(self.data) // 2 :]


class FakeHook:
    """Answers ``send`` with ``answer`` and serves ``urls``; counts everything."""

    balance_guard = False  # the connection extra's default

    def __init__(self, answer: PredictionResult | Exception, urls: dict[str, bytes] | None = None) -> None:
        self.answer = answer
        self.urls = urls or {}
        self.predictions: list[dict[str, Any]] = []
        self.downloads: list[str] = []
        self.fail_downloads: set[str] = set()

    def send(self, spec: Any, request: WireRequest) -> PredictionResult:
        # What the engine sends: the input it validated once, inside the wire body.
        self.predictions.append(dict(request.body.get("input", request.body)))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    @contextmanager
    def stream_download(self, url: str, *, max_bytes: int | None = None) -> Iterator[FakeDownload]:
        self.downloads.append(url)
        if url in self.fail_downloads:
            self.fail_downloads.discard(url)
            raise AIHubMixDownloadError("signed URL expired (HTTP 403)", retryable=False)
        yield FakeDownload(self.urls[url])


def identity(try_number: int = 1) -> TaskIdentity:
    return TaskIdentity(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=try_number)


def make_run(
    hook: FakeHook,
    store: LocalObjectStore,
    *,
    prompt: str = "a kite",
    try_number: int = 1,
    spec: Any = SYNC_MODEL,
) -> GenerationRun:
    return GenerationRun(
        hook=hook,  # type: ignore[arg-type]
        store=store,
        spec=spec,
        params={"prompt": prompt},
        extra_input=None,
        identity=identity(try_number),
        aws_conn_id=None,
    )


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore((tmp_path / "out").as_uri())


INLINE = PredictionResult(images=[GeneratedImage(data=png("red"), seed=7)], request_id="req-1")
URLS = {
    "https://cdn.example/a.png?Signature=s1": png("green"),
    "https://cdn.example/b.png?Signature=s2": png("blue"),
}
BY_URL = PredictionResult(images=[GeneratedImage(url=url) for url in URLS])


def statuses(run: GenerationRun) -> list[tuple[int, str]]:
    manifest = run.load_manifest()
    assert manifest is not None
    return [(a.try_number, a.status.value) for a in manifest.attempts]


def test_first_try_buys_once_and_records_each_step(store: LocalObjectStore) -> None:
    hook = FakeHook(INLINE)
    run = make_run(hook, store)

    outcome = run.start()

    assert len(hook.predictions) == 1 and not outcome.reused
    (record,) = outcome.records or []
    assert record["sha256"] == hashlib.sha256(png("red")).hexdigest() and record["seed"] == 7
    assert statuses(run) == [(1, "submitting"), (1, "received"), (1, "complete")]
    manifest = run.load_manifest()
    assert manifest is not None and manifest.records == [record]
    assert manifest.received[0].key == store.key_for(record["uri"])


def test_complete_manifest_is_reused_without_calls(
    store: LocalObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_run(FakeHook(INLINE), store).start()
    hook = FakeHook(AIHubMixError("must not be called"))
    caplog.set_level(logging.INFO, logger="airflow_provider_aihubmix.engine.run")
    run = make_run(hook, store, try_number=2)

    outcome = run.start()

    assert hook.predictions == [] and outcome.reused and run.reused
    assert outcome.records == first.records
    assert "no API call made" in caplog.text


def test_regenerate_buys_again_despite_complete_manifest(store: LocalObjectStore) -> None:
    make_run(FakeHook(INLINE), store).start()
    hook = FakeHook(PredictionResult(images=[GeneratedImage(data=png("yellow"))]))

    outcome = make_run(hook, store, try_number=2).start(regenerate=True)

    assert len(hook.predictions) == 1 and not outcome.reused
    assert (outcome.records or [])[0]["sha256"] == hashlib.sha256(png("yellow")).hexdigest()


def test_different_fingerprint_generates_anew(store: LocalObjectStore) -> None:
    make_run(FakeHook(INLINE), store, prompt="a kite").start()
    hook = FakeHook(INLINE)

    outcome = make_run(hook, store, prompt="a different kite").start()

    assert hook.predictions == [{"prompt": "a different kite"}] and not outcome.reused


@pytest.mark.parametrize("answer_lost", [False, True], ids=["killed-mid-call", "answer-lost"])
def test_possibly_billed_attempt_is_refused_unless_regenerate(
    store: LocalObjectStore, answer_lost: bool
) -> None:
    if answer_lost:
        with pytest.raises(AIHubMixPossiblyBilledError):
            make_run(FakeHook(AIHubMixPossiblyBilledError("connection reset after send")), store).start()
        assert statuses(make_run(FakeHook(INLINE), store))[-1] == (1, "ambiguous")
    else:
        # A worker killed during the call leaves only the "submitting" record.
        run = make_run(FakeHook(INLINE), store)
        manifest = run.new_manifest()
        manifest.record_attempt(ManifestStatus.SUBMITTING)
        run.save_manifest(manifest)
    hook = FakeHook(INLINE)

    with pytest.raises(AIHubMixPossiblyBilledError, match="regenerate=True"):
        make_run(hook, store, try_number=2).start()
    assert hook.predictions == []

    make_run(hook, store, try_number=3).start(regenerate=True)
    assert len(hook.predictions) == 1


def test_refused_request_may_be_submitted_again(store: LocalObjectStore) -> None:
    with pytest.raises(AIHubMixBadRequestError):
        make_run(FakeHook(AIHubMixBadRequestError("size not allowed", status_code=400)), store).start()
    hook = FakeHook(INLINE)

    outcome = make_run(hook, store, try_number=2).start()

    assert len(hook.predictions) == 1 and outcome.records
    # The new purchase starts its own manifest.
    assert statuses(make_run(hook, store)) == [(2, "submitting"), (2, "received"), (2, "complete")]


def test_async_task_is_recorded_then_reattached_not_resubmitted(store: LocalObjectStore) -> None:
    url = "https://cdn.example/flux.png?Signature=x"
    submitted = PredictionResult(task=TaskHandle(task_id="task-42", polling_url="https://up/poll?id=42"))
    hook = FakeHook(submitted, urls={url: png("purple")})
    first = make_run(hook, store, spec=ASYNC_MODEL).start()
    assert first.task is not None and first.task.task_id == "task-42"
    assert statuses(make_run(hook, store, spec=ASYNC_MODEL))[-1] == (1, "submitted")

    retry = make_run(hook, store, spec=ASYNC_MODEL, try_number=2)
    outcome = retry.start()

    assert outcome.task is not None and outcome.task.task_id == "task-42"
    assert len(hook.predictions) == 1
    event = TaskEvent(status=EventStatus.SUCCESS, remote_task_id="task-42", result_urls=[url])
    (record,) = retry.collect_event(event)
    assert record["remote_task_id"] == "task-42" and hook.downloads == [url]


def test_received_inline_images_finish_from_stored_objects(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Images stored, then the complete manifest write fails.
    hook = FakeHook(INLINE)
    run = make_run(hook, store)
    real_write = store.write_json

    def failing_complete(key: str, obj: Any) -> str:
        if obj["status"] == "complete":
            raise OSError("disk full")
        return real_write(key, obj)

    monkeypatch.setattr(store, "write_json", failing_complete)
    with pytest.raises(OSError):
        run.start()
    monkeypatch.setattr(store, "write_json", real_write)
    stored_before = sorted(p.name for p in Path(store.path_for(run.prefix)).iterdir())

    outcome = make_run(hook, store, try_number=2).start()

    assert len(hook.predictions) == 1 and outcome.reused
    (record,) = outcome.records or []
    assert record["sha256"] == hashlib.sha256(png("red")).hexdigest() and record["seed"] == 7
    assert statuses(run) == [(1, "submitting"), (1, "received"), (2, "complete")]
    assert sorted(p.name for p in Path(store.path_for(run.prefix)).iterdir()) == stored_before


def test_received_url_images_download_again_and_keep_stored_ones(store: LocalObjectStore) -> None:
    hook = FakeHook(BY_URL, urls=URLS)
    second_url = list(URLS)[1]
    hook.fail_downloads.add(second_url)
    run = make_run(hook, store)
    with pytest.raises(AIHubMixDownloadError):
        run.start()
    manifest = run.load_manifest()
    assert manifest is not None and manifest.status is ManifestStatus.RECEIVED
    assert [r["index"] for r in manifest.records] == [0]  # progress recorded image by image

    outcome = make_run(hook, store, try_number=2).start()

    assert len(hook.predictions) == 1
    assert hook.downloads == [next(iter(URLS)), second_url, second_url]  # the stored one is not fetched again
    assert [r["sha256"] for r in outcome.records or []] == [
        hashlib.sha256(d).hexdigest() for d in URLS.values()
    ]
    complete = run.load_manifest()
    assert complete is not None and complete.status is ManifestStatus.COMPLETE
    # Signed URLs are needed only until the images are stored.
    assert all(item.url is None for item in complete.received)
    assert "Signature" not in json.dumps(complete.model_dump(mode="json"))


def test_received_inline_image_never_stored_is_not_bought_again(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = FakeHook(INLINE)
    run = make_run(hook, store)

    def broken_put(*args: Any, **kwargs: Any) -> StoredObject:
        raise OSError("disk gone")

    monkeypatch.setattr(store, "put_image_bytes", broken_put)
    with pytest.raises(OSError):
        run.start()
    monkeypatch.undo()

    with pytest.raises(AIHubMixPossiblyBilledError, match="cannot be fetched again"):
        make_run(hook, store, try_number=2).start()
    assert len(hook.predictions) == 1
    make_run(hook, store, try_number=3).start(regenerate=True)
    assert len(hook.predictions) == 2


def test_tampered_stored_object_is_not_trusted(store: LocalObjectStore) -> None:
    hook = FakeHook(BY_URL, urls=URLS)
    run = make_run(hook, store)
    records = run.start().records or []
    manifest = run.load_manifest()
    assert manifest is not None
    # Roll the manifest back to "received" and corrupt the first image on disk.
    manifest.status = ManifestStatus.RECEIVED
    manifest.received = [
        item.model_copy(update={"url": url}) for item, url in zip(manifest.received, URLS, strict=True)
    ]
    run.save_manifest(manifest)
    Path(store.path_for(store.key_for(records[0]["uri"]))).write_bytes(png("black"))

    outcome = make_run(hook, store, try_number=2).start()

    assert len(hook.predictions) == 1
    assert hook.downloads[2:] == [next(iter(URLS))]  # only the corrupted one is fetched again
    assert outcome.records == records


def test_validation_happens_before_anything_is_bought(store: LocalObjectStore, tmp_path: Path) -> None:
    hook = FakeHook(INLINE)
    with pytest.raises(AIHubMixError, match="'size'"):
        GenerationRun(
            hook=hook,  # type: ignore[arg-type]
            store=store,
            spec=SYNC_MODEL,
            params={"prompt": "x", "size": "banana"},
            extra_input=None,
            identity=identity(),
            aws_conn_id=None,
        )
    assert hook.predictions == []
    assert list(tmp_path.rglob("*.json")) == []


DATA_TEXT = "data:image/png;base64," + base64.b64encode(b"name,price\nkite,3\n").decode()


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"", "is empty"),
        (b"name,price\nkite,3\n", "is not an image"),
        (None, "cannot be read"),
        ("data", "is not an image"),
    ],
)
def test_an_unusable_reference_is_refused_naming_it_before_anything_is_bought(
    store: LocalObjectStore, tmp_path: Path, content: bytes | str | None, what: str
) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(png("red"))
    bad = tmp_path / "bad.png"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    hook = FakeHook(INLINE)
    run = GenerationRun(
        hook=hook,  # type: ignore[arg-type]
        store=store,
        spec=resolve_model("qwen-image-edit"),
        params={"prompt": "x", "image": [str(good), DATA_TEXT if content == "data" else str(bad)]},
        extra_input=None,
        identity=identity(),
        aws_conn_id=None,
    )
    with pytest.raises(AIHubMixValidationError) as err:
        run.start()
    message = str(err.value)
    # The parameter, the model, which of the references, and what is allowed.
    assert "Parameter 'image'" in message and "qwen-image-edit" in message
    named = "data: URI (" if content == "data" else f"{bad.as_uri()} "
    assert named in message and what in message and "allowed:" in message
    assert hook.predictions == []
    assert list(tmp_path.rglob("*.json")) == []
