"""What a task instance already bought stays bought: earlier purchases kept, stored images checked.

* :func:`keep_earlier` -- before buying anew over a purchase whose images are stored (a changed
  request, or ``regenerate=True``), its images and manifest are copied to
  ``<prefix>/earlier/<time>-<fingerprint>/``. The new images take the task's keys
  (``image-000...``), so without this the earlier, paid images would be overwritten and their cost
  would drop out of the run's budget and cost summary, which read every manifest under the run.
  :func:`keep_for_resend` keeps a possibly billed send the same way before it is sent again
  (``on_possibly_billed='resend_once'``, :mod:`~.resend`).
* :func:`check_stored` -- before reusing a complete manifest, every recorded image must still be in
  storage; a deleted one fails the task (:class:`StoredImagesMissingError`) instead of a success
  whose XCom and gallery point at a missing object.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_aihubmix.engine.collection import ImageCollector
from airflow_provider_aihubmix.engine.manifest import Manifest, ManifestStatus, utcnow
from airflow_provider_aihubmix.engine.resend import RESEND_MARK
from airflow_provider_aihubmix.exceptions import StoredImagesMissingError
from airflow_provider_aihubmix.storage import MANIFEST_NAME, image_key_stem, join_key
from airflow_provider_aihubmix.storage.base import READ_CHUNK_BYTES

log = logging.getLogger("airflow_provider_aihubmix.engine.run")

# Where an earlier purchase of the task instance is kept when it buys anew.
EARLIER_FOLDER = "earlier"


def keep_earlier(collector: ImageCollector, previous: Manifest) -> list[dict[str, Any]]:
    """Copy ``previous``'s images and manifest under ``earlier/``; return the new manifest's
    ``earlier`` list (``previous``'s, plus this purchase: manifest key, images, costs), which lets
    the gallery show them without listing storage."""
    store = collector.store
    last = previous.attempts[-1].at if previous.attempts else utcnow()
    stamp = "".join(ch for ch in last if ch.isdigit())[:14]
    folder = join_key(collector.prefix, EARLIER_FOLDER, f"{stamp}-{previous.fingerprint[:12]}")
    records = []
    for record in previous.records:
        with store.open_read(store.key_for(record["uri"])) as stream:
            stored = store.put_image(
                image_key_stem(folder, int(record["index"])),
                iter(lambda: stream.read(READ_CHUNK_BYTES), b""),
                metadata=collector.metadata(int(record["index"])),
                expected_size=record.get("bytes"),
            )
        records.append({**record, "uri": stored.uri, "sha256": stored.sha256})
    kept = previous.model_copy(update={"records": records, "received": [], "earlier": []})
    store.write_json(join_key(folder, MANIFEST_NAME), kept.model_dump(mode="json"))
    log.warning(
        "%s held %d paid image(s) of a different request (or regenerate=True); kept them with their "
        "manifest under %s before buying anew",
        collector.manifest_uri,
        len(records),
        store.uri_for(folder),
    )
    return [
        *previous.earlier,
        {
            "manifest": join_key(folder, MANIFEST_NAME),
            "fingerprint": previous.fingerprint,
            "images": len(records),
            "estimated_cost_usd": previous.estimated_cost_usd,
            "actual_cost_usd": previous.actual_cost_usd,
        },
    ]


def keep_for_resend(collector: ImageCollector, previous: Manifest) -> list[dict[str, Any]]:
    """Keep ``previous`` (the possibly billed send) under ``earlier/``; return the new ``earlier``
    list, its last entry marked ``"resend": true`` with the lost send's status and request id."""
    earlier = keep_earlier(collector, previous)
    last = previous.attempts[-1] if previous.attempts else None
    earlier[-1] = {
        **earlier[-1],
        RESEND_MARK: True,
        "status": previous.status.value,
        "request_id": last.request_id if last else None,
        "sent_at": last.at if last else None,
    }
    log.warning(
        "%s records a request that may have been billed (%s); on_possibly_billed='resend_once': "
        "sending it once more. Both sends are counted (the first kept at %s).",
        collector.manifest_uri,
        previous.status.value,
        earlier[-1]["manifest"],
    )
    return earlier


def check_stored(collector: ImageCollector, manifest: Manifest) -> None:
    """Raise :class:`StoredImagesMissingError` naming the recorded images no longer in storage."""
    store = collector.store
    missing = [r["uri"] for r in manifest.records if not store.exists(store.key_for(r["uri"]))]
    if not missing:
        return
    first = next((a for a in manifest.attempts if a.status is ManifestStatus.COMPLETE), None)
    raise StoredImagesMissingError(
        f"{len(missing)} of {len(manifest.records)} image(s) recorded in {collector.manifest_uri} are no "
        f"longer in storage ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); they were "
        f"bought and stored{f' at {first.at}' if first else ''}. Nothing was sent. Restore the objects "
        "and run the task again, or set regenerate=True to buy the images again (billed)."
    )


__all__ = ["EARLIER_FOLDER", "check_stored", "keep_earlier", "keep_for_resend"]
