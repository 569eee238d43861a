"""A paid answer is never lost: an unreadable 2xx answer is kept beside the manifest.

When a 200 answer yields no image, no task and no verdict (a shape nothing reads yet), the
prediction may well be paid for. Its body is saved as ``answer.json`` beside ``manifest.json``
(the API key replaced wherever it appears; signed URLs kept, since they are what a later
reader needs, but never logged), the manifest turns ``ambiguous`` and names the file, and the
task fails naming the file and the ``X-Request-Id``. A later run of the same task -- after an
upgrade, or with a fixed parser -- reads the saved answer instead of buying again: 0 requests.
Nothing here ever resubmits.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.engine.manifest import Manifest, utcnow
from airflow_provider_aihubmix.exceptions import AIHubMixModerationError, AIHubMixUnreadableAnswerError
from airflow_provider_aihubmix.responses.shapes import PredictionResult, parse_prediction
from airflow_provider_aihubmix.storage.keys import join_key

if TYPE_CHECKING:
    from airflow_provider_aihubmix.engine.collection import ImageCollector
    from airflow_provider_aihubmix.storage import ObjectStore

log = logging.getLogger(__name__)

ANSWER_NAME = "answer.json"
_REDACTED = "***"


def answer_key(prefix: str) -> str:
    return join_key(prefix, ANSWER_NAME)


def _without(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with every secret string replaced, however deep (a gateway may echo a header)."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _REDACTED)
        return value
    if isinstance(value, dict):
        return {_without(str(k), secrets): _without(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, secrets) for v in value]
    return value


def write_answer(
    store: ObjectStore, prefix: str, model: str, err: AIHubMixUnreadableAnswerError, secrets: tuple[str, ...]
) -> str:
    """Write the answer as ``answer.json`` under ``prefix``; return the saved object's URI."""
    key = answer_key(prefix)
    secrets = tuple(secret for secret in secrets if secret)
    saved: dict[str, Any] = {"saved_at": utcnow(), "model": model, "request_id": err.request_id}
    if err.body is None and err.text is not None:
        saved["text"] = _without(err.text, secrets)  # not JSON (an HTML page, a body cut short)
    else:
        saved["body"] = _without(err.body, secrets)
    store.write_json(key, saved)
    return store.uri_for(key)


def save_unreadable(run: ImageCollector, err: AIHubMixUnreadableAnswerError) -> str:
    """Write the answer beside the run's manifest; return the saved object's URI."""
    return write_answer(run.store, run.prefix, run.model, err, (run.hook.settings.api_key,))


def unreadable_error(
    err: AIHubMixUnreadableAnswerError, saved_uri: str, *, again: bool = False
) -> AIHubMixUnreadableAnswerError:
    """The error a task fails with: what happened, where the answer is, and what to do."""
    what = (
        "The saved answer is still unreadable by this version"
        if again
        else "AIHubMix answered (and may have billed) with a body this version cannot read"
    )
    error = AIHubMixUnreadableAnswerError(
        f"{what}: no image, no task id and no safety verdict. It is saved at {saved_uri} "
        f"(X-Request-Id={err.request_id or 'unknown'}); a run of this task with a provider that reads "
        "it finishes from it with no new request. Not submitting again; set regenerate=True to buy a "
        "new generation.",
        request_id=err.request_id,
        body_excerpt=err.body_excerpt,
        body=err.body,
    )
    error.saved_uri = saved_uri
    return error


def read_saved(run: ImageCollector, manifest: Manifest) -> PredictionResult:
    """Parse the saved answer with today's reader; raises as the live answer would have."""
    key = answer_key(run.prefix)
    saved = run.store.read_json(key)
    if not isinstance(saved, dict) or ("body" not in saved and "text" not in saved):
        raise AIHubMixUnreadableAnswerError(
            f"{manifest.saved_answer} recorded in {run.manifest_uri} is missing or damaged; not "
            "submitting again; set regenerate=True to buy a new generation"
        )
    request_id = saved.get("request_id")
    if "body" not in saved:
        # Kept as text: it was not JSON, and no reader finds images in text.
        unreadable = AIHubMixUnreadableAnswerError("The saved answer is not JSON", request_id=request_id)
        raise unreadable_error(unreadable, run.store.uri_for(key), again=True)
    try:
        return parse_prediction(saved["body"], request_id=request_id)
    except AIHubMixUnreadableAnswerError as err:
        raise unreadable_error(err, run.store.uri_for(key), again=True) from None


def finish_from_saved(run: ImageCollector, manifest: Manifest) -> PredictionResult:
    """Turn the saved answer into what the purchase would have produced, without a request.

    A task id is recorded as submitted (at the time the answer came) and waited for; images are
    returned for the caller to store; a safety verdict fails the manifest and is raised, not
    retried. Still unreadable: raised again, the manifest stays ``ambiguous``.
    """
    try:
        result = read_saved(run, manifest)
    except AIHubMixModerationError as err:
        run.ledger.failed(manifest, error=str(err), request_id=err.request_id, error_type=type(err).__name__)
        raise
    log.info(
        "Finishing from the saved answer %s: it now reads as %s; no API call made",
        run.store.uri_for(answer_key(run.prefix)),
        f"task {result.task.task_id}" if result.task else f"{len(result.images)} image(s)",
    )
    if result.task is not None:
        answered_at = manifest.attempts[-1].at if manifest.attempts else None
        run.ledger.submitted(
            manifest, result.task, usage=result.usage, request_id=result.request_id, submitted_at=answered_at
        )
    return result
