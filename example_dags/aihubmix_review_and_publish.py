"""Generate a campaign's images, let a person pick the ones to publish, publish only those.

1. ``generate``: Seedream, mapped over the campaign briefs (two images per brief).
2. ``review``: Airflow's human-in-the-loop operator (standard provider, Airflow >= 3.1)
   asks a reviewer to pick images. Its options are the images themselves (one per stored
   image, labelled with task, brief and index) and its body links to the gallery of this
   run, where the reviewer sees every image with its prompt, model, seed and cost.
3. ``publish``: copies the chosen images under ``<output_uri>/published/`` and updates the
   ``aihubmix_published`` Asset, so whatever consumes published images runs next.

On an Airflow without the human-in-the-loop operators this file defines no DAG and logs why.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pendulum
from _common import OUTPUT_URI
from airflow.sdk import DAG, Asset, task

from airflow_provider_aihubmix.operators.images import AIHubMixSeedreamOperator

log = logging.getLogger(__name__)

try:  # apache-airflow-providers-standard on Airflow >= 3.1
    from airflow.providers.standard.operators.hitl import HITLOperator
except Exception as err:  # ImportError, or the provider's "needs Airflow 3.1+" feature exception
    HITLOperator = None  # type: ignore[assignment,misc]
    log.warning("aihubmix_review_and_publish is skipped: no human-in-the-loop operators here (%s)", err)

BRIEFS = json.loads((Path(__file__).parent / "briefs" / "campaign_briefs.json").read_text())["briefs"]
PUBLISHED = Asset(uri=f"{OUTPUT_URI.rstrip('/')}/published", name="aihubmix_published")


def image_label(record: dict[str, Any]) -> str:
    """The reviewer's option for one stored image: unique, short, readable."""
    brief = BRIEFS[record["map_index"]]["id"] if 0 <= record["map_index"] < len(BRIEFS) else "?"
    return f"{brief} · image {record['index']} · generate[{record['map_index']}]"


if HITLOperator is not None:

    class PickImagesOperator(HITLOperator):  # type: ignore[misc,valid-type]
        """A human-in-the-loop choice whose options are the images an upstream task stored.

        Options are fixed from the rendered ``images`` (XCom records) when the task runs and
        again when it resumes with the answer, so the reviewer's choice is checked against them.
        """

        template_fields = (*HITLOperator.template_fields, "images")

        def __init__(self, *, images: Any, **kwargs: Any) -> None:
            # A placeholder until the images are known; replaced before anything is asked.
            super().__init__(options=["(the images, once generated)"], multiple=True, **kwargs)
            self.images = images

        def _options_from_images(self, context: Any) -> None:
            from airflow_provider_aihubmix.gallery.urls import gallery_url
            from airflow_provider_aihubmix.version_compat import conf

            records = [r for mapped in self.images for r in (mapped or [])]
            self.options = [image_label(r) for r in records]
            url = gallery_url(
                conf.get("api", "base_url", fallback="") or "", context["dag"].dag_id, context["run_id"]
            )
            self.body = (
                f"{len(records)} image(s) were generated for this campaign. "
                f"[Look at them in the gallery]({url}), then pick the ones to publish."
            )

        def execute(self, context: Any) -> Any:
            self._options_from_images(context)
            self.validate_options()
            return super().execute(context)

        def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
            self._options_from_images(context)
            return super().execute_complete(context, event)

    with DAG(
        dag_id="aihubmix_review_and_publish",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["aihubmix", "example", "human-in-the-loop"],
    ) as review_and_publish_dag:
        generate = AIHubMixSeedreamOperator.partial(
            task_id="generate",
            model="doubao-seedream-4-0",
            size="1K",
            n=2,
            output_uri=OUTPUT_URI,
            lineage_include_prompt=True,  # the reviewer sees the prompts in the gallery
            max_cost_usd=1.0,
            allow_unknown_cost=True,
        ).expand(prompt=[brief["prompt"] for brief in BRIEFS])

        review = PickImagesOperator(
            task_id="review",
            subject="Which images of this campaign should be published?",
            images=generate.output,
        )

        @task(outlets=[PUBLISHED])
        def publish(images: list[list[dict[str, Any]]], answer: dict[str, Any], **context: Any) -> list[str]:
            """Copy the chosen images under ``published/``; the Asset event lists them."""
            from airflow_provider_aihubmix.storage import encode_key_part, open_store, read_uri_bytes

            chosen = set(answer["chosen_options"])
            records = [r for mapped in images for r in mapped if image_label(r) in chosen]
            store = open_store(OUTPUT_URI, aws_conn_id="aws_default")
            run = encode_key_part(context["run_id"])
            published = []
            for record in records:
                data, _ = read_uri_bytes(record["uri"], aws_conn_id="aws_default")
                stem = f"published/{run}/generate-{record['map_index']}-image-{record['index']:03d}"
                stored = store.put_image_bytes(stem, data, metadata={"model": record["model"]})
                published.append(stored.uri)
            context["outlet_events"][PUBLISHED].extra = {"run_id": context["run_id"], "images": published}
            print(f"Published {len(published)} of {sum(len(m) for m in images)} image(s)")
            return published

        publish(generate.output, review.output)
