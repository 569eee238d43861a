"""Gemini from the triggerer (``deferrable=True``): n requests, each recorded before the next.

The operator defers against the sandbox over real HTTP; the real
:class:`AIHubMixPredictionTrigger` runs on an event loop as the triggerer would.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_provider_aihubmix.engine.deferred import PurchaseLedger, StoredRequest
from airflow_provider_aihubmix.exceptions import AIHubMixBadRequestError, AIHubMixRefusalError
from airflow_provider_aihubmix.operators.images import AIHubMixGeminiImageOperator
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.version_compat import TaskDeferred
from tests.task_fakes import FakeTaskInstance, context_for, run_trigger

pytestmark = pytest.mark.timeout(120)

GEMINI = r"^/gemini/v1beta/models/gemini-3-pro-image-preview:generateContent$"


def operator(tmp_path: Path, **kwargs: Any) -> AIHubMixGeminiImageOperator:
    kwargs.setdefault("prompt", "the fox mascot waving")
    return AIHubMixGeminiImageOperator(
        task_id="generate",
        model="nano-banana-pro",
        deferrable=True,
        output_uri=(tmp_path / "out").as_uri(),
        **kwargs,
    )


def defer(op: AIHubMixGeminiImageOperator, ti: FakeTaskInstance) -> Any:
    with pytest.raises(TaskDeferred) as info:
        op.execute(context_for(ti))
    return info.value.trigger


def manifest_of(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "out").rglob("manifest.json")
    return json.loads(path.read_text())


def posts(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in sandbox.client.requests(host="api", path=GEMINI) if r["method"] == "POST"]


def reference_file(tmp_path: Path) -> Path:
    path = tmp_path / "mascot.png"
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (250, 140, 0)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_n_requests_from_the_triggerer_with_an_inline_reference(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    ti = FakeTaskInstance()
    reference = reference_file(tmp_path)
    trigger = defer(operator(tmp_path, n=3, seed=7, image=reference.as_uri()), ti)
    (stored,) = (tmp_path / "out").rglob("request.json")
    request = StoredRequest.model_validate_json(stored.read_text())
    assert [r.body["generationConfig"]["seed"] for r in request.requests] == [7, 8, 9]
    assert sandbox_conn not in stored.read_text() and posts(sandbox) == []

    event = run_trigger(trigger)

    assert event["status"] == "success" and event["sent"] == 3 and event["images"] == 3
    sent = posts(sandbox)
    assert len(sent) == 3
    for record in sent:
        inline = record["json"]["contents"][0]["parts"][1]["inlineData"]
        assert base64.b64decode(inline["data"]) == reference.read_bytes()
        assert (
            record["headers"]["x-goog-api-key"] == sandbox_conn and "authorization" not in record["headers"]
        )
    records = operator(tmp_path, n=3, seed=7, image=reference.as_uri()).execute_complete(
        context_for(ti), event
    )
    assert [(r["index"], r["seed"]) for r in records] == [(0, 7), (1, 8), (2, 9)]
    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "complete" and manifest["requests_answered"] == 3
    assert [item["request_index"] for item in manifest["received"]] == [0, 1, 2]
    assert {item["commentary"] for item in manifest["received"]} == {"Here is the image you asked for."}
    image_tokens = [d for d in manifest["usage"]["candidatesTokensDetails"] if d["modality"] == "IMAGE"]
    assert image_tokens == [{"modality": "IMAGE", "tokenCount": 3 * 1120}]


def test_a_refusal_in_the_triggerer_fails_as_moderation(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    ti = FakeTaskInstance()
    op = operator(tmp_path, prompt="a poster sandbox:finish=IMAGE_SAFETY", n=2)
    event = run_trigger(defer(op, ti))

    assert event["error_type"] == "AIHubMixRefusalError" and event["sent"] == 1
    with pytest.raises(AIHubMixRefusalError, match="IMAGE_SAFETY"):
        op.execute_complete(context_for(ti), event)
    assert len(posts(sandbox)) == 1 and manifest_of(tmp_path)["status"] == "failed"


def test_a_retry_after_a_failure_between_requests_two_and_three_sends_one_more(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = PurchaseLedger.record_answer

    def fail_the_third_once(self: PurchaseLedger, index: int, answer: Any) -> int:
        images = original(self, index, answer)
        if index == 1 and not sandbox.client.faults():
            sandbox.client.inject(kind="status", status=400, count=1, path="gemini", message="hiccup")
        return images

    monkeypatch.setattr(PurchaseLedger, "record_answer", fail_the_third_once)
    first_try = FakeTaskInstance()
    event = run_trigger(defer(operator(tmp_path, n=3), first_try))
    assert event["error_type"] == "AIHubMixBadRequestError" and event["sent"] == 3
    with pytest.raises(AIHubMixBadRequestError, match="hiccup"):
        operator(tmp_path, n=3).execute_complete(context_for(first_try), event)
    assert manifest_of(tmp_path)["requests_answered"] == 2

    second_try = FakeTaskInstance(try_number=2)
    event = run_trigger(defer(operator(tmp_path, n=3), second_try))
    assert event["status"] == "success" and event["sent"] == 1
    records = operator(tmp_path, n=3).execute_complete(context_for(second_try), event)

    assert [r["index"] for r in records] == [0, 1, 2]
    assert len(posts(sandbox)) == 4 and sandbox.client.billed_count("gemini") == 3
    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "complete" and len({r["sha256"] for r in manifest["records"]}) == 3


@pytest.mark.parametrize("cut", ["refused", "triggerer_died"])
def test_a_blocking_retry_after_the_triggerer_sends_only_the_missing_request(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    """A team that turns deferral off after a cut-short try keeps what the triggerer bought.

    ``refused``: the third request gets a 400 (the series is ``failed`` with 2 answered);
    ``triggerer_died``: the triggerer stops right after recording the second answer (the
    series stays ``deferred`` with 2 answered and nothing in flight).
    """
    original = PurchaseLedger.record_answer

    def cut_after_the_second(self: PurchaseLedger, index: int, answer: Any) -> int:
        images = original(self, index, answer)
        if index == 1 and cut == "triggerer_died":
            raise asyncio.CancelledError
        if index == 1 and not sandbox.client.faults():
            sandbox.client.inject(kind="status", status=400, count=1, path="gemini", message="hiccup")
        return images

    monkeypatch.setattr(PurchaseLedger, "record_answer", cut_after_the_second)
    first_try = FakeTaskInstance()
    trigger = defer(operator(tmp_path, n=3, seed=7), first_try)
    if cut == "triggerer_died":
        with pytest.raises(asyncio.CancelledError):
            run_trigger(trigger)
        assert manifest_of(tmp_path)["status"] == "deferred"
    else:
        event = run_trigger(trigger)
        with pytest.raises(AIHubMixBadRequestError, match="hiccup"):
            operator(tmp_path, n=3, seed=7).execute_complete(context_for(first_try), event)
        assert manifest_of(tmp_path)["status"] == "failed"
    assert manifest_of(tmp_path)["requests_answered"] == 2 and len(posts(sandbox)) == 2 + (cut == "refused")

    blocking = operator(tmp_path, n=3, seed=7)
    blocking.deferrable = False
    records = blocking.execute(context_for(FakeTaskInstance(try_number=2)))

    assert [(r["index"], r["seed"]) for r in records] == [(0, 7), (1, 8), (2, 9)]
    assert sandbox.client.billed_count("gemini") == 3
    assert posts(sandbox)[-1]["json"]["generationConfig"]["seed"] == 9
    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "complete" and manifest["requests_answered"] == 3
