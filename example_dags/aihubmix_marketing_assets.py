"""Daily marketing assets: every campaign brief through three model families, one contact sheet.

The briefs come from ``briefs/campaign_briefs.json``. Each family operator is mapped
over the prompts; every image lands under a prefix unique to its task instance, and a
contact sheet (one labelled PNG grid) is stored beside them. The contact-sheet task
updates the Asset for this output prefix, so ``aihubmix_marketing_review`` runs after
each successful generation and reads the manifests of the run that produced it.

Cost: each task refuses before buying if its estimate passes its ``max_cost_usd``; the run
as a whole is capped by the DAG param ``max_cost_usd`` (a task that would pass it is not
submitted). The last task writes the run's cost summary (``cost-summary.json`` beside the
images: per model, per task, estimated vs actual) and prints the total.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
from _common import OUTPUT_URI
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_aihubmix.operators.images import (
    AIHubMixImagenOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixSeedreamOperator,
)

BRIEFS_FILE = Path(__file__).parent / "briefs" / "campaign_briefs.json"
# One Asset per output prefix: downstream DAGs schedule on it.
MARKETING_ASSETS = Asset(
    uri=f"{OUTPUT_URI.rstrip('/')}/dag_id=aihubmix_marketing_assets", name="aihubmix_marketing_assets"
)

with DAG(
    dag_id="aihubmix_marketing_assets",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aihubmix", "example"],
    default_args={"retries": 2},
    # The run's budget: a task whose estimate would take the run's recorded spend past it is refused.
    params={"max_cost_usd": Param(2.0, type="number", minimum=0, description="USD cap for one run")},
) as marketing_dag:

    @task
    def load_briefs() -> list[dict[str, str]]:
        return json.loads(BRIEFS_FILE.read_text())["briefs"]

    @task
    def prompts(briefs: list[dict[str, str]]) -> list[str]:
        return [brief["prompt"] for brief in briefs]

    briefs = load_briefs()
    brief_prompts = prompts(briefs)

    gpt_image = AIHubMixOpenAIImageOperator.partial(
        task_id="gpt_image",
        model="gpt-image-1-mini",
        quality="low",
        output_format="png",
        output_uri=OUTPUT_URI,
        lineage_include_prompt=True,  # briefs are not secret: prompts in lineage and the gallery
        max_cost_usd=0.05,  # estimate: OpenAI's per-image price for low quality
    ).expand(prompt=brief_prompts)

    imagen = AIHubMixImagenOperator.partial(
        task_id="imagen",
        model="imagen-4.0-fast-generate-001",
        aspect_ratio="16:9",
        output_uri=OUTPUT_URI,
        lineage_include_prompt=True,  # briefs are not secret: prompts in lineage and the gallery
        max_cost_usd=0.10,
    ).expand(prompt=brief_prompts)

    seedream = AIHubMixSeedreamOperator.partial(
        task_id="seedream",
        model="doubao-seedream-4-0",
        size="2K",
        watermark=False,
        output_uri=OUTPUT_URI,
        lineage_include_prompt=True,  # briefs are not secret: prompts in lineage and the gallery
        max_cost_usd=0.50,
    ).expand(prompt=brief_prompts)

    @task(outlets=[MARKETING_ASSETS])
    def contact_sheet(
        briefs: list[dict[str, str]], *families: list[list[dict[str, Any]]], **context: Any
    ) -> dict[str, Any]:
        from airflow_provider_aihubmix.gallery.contact_sheet import contact_sheet_for_records
        from airflow_provider_aihubmix.pricing.summary import summarize_run, total_line
        from airflow_provider_aihubmix.storage import open_store, read_uri_bytes, task_prefix

        records = [record for family in families for mapped in family for record in mapped]
        prompt_of = {(r["model"], r["map_index"]): briefs[r["map_index"]]["prompt"] for r in records}
        png = contact_sheet_for_records(
            records,
            lambda uri: read_uri_bytes(uri, aws_conn_id="aws_default")[0],
            prompts=prompt_of,
            columns=len(briefs),
            title=f"aihubmix_marketing_assets {context['run_id']}",
        )
        ti = context["ti"]
        store = open_store(OUTPUT_URI, aws_conn_id="aws_default")
        prefix = task_prefix(ti.dag_id, context["run_id"], ti.task_id, -1)
        sheet = store.put_image_bytes(f"{prefix}/contact-sheet", png, metadata={"model": "contact-sheet"})
        manifests = sorted({r["uri"].rsplit("/", 1)[0] + "/manifest.json" for r in records})
        # The run's cost, read back from every task instance's manifest, stored beside the images.
        cost = summarize_run(context, OUTPUT_URI)
        summary = {
            "contact_sheet": sheet.uri,
            "images": [r["uri"] for r in records],
            "manifests": manifests,
            "cost_summary": cost["uri"],
            "cost_usd": cost["total"]["actual"],
        }
        context["outlet_events"][MARKETING_ASSETS].extra = {
            "run_id": context["run_id"],
            "contact_sheet": sheet.uri,
            "manifests": manifests,
            "cost_summary": cost["uri"],
        }
        print(f"Contact sheet: {sheet.uri}")
        for uri in summary["images"]:
            print(f"Image: {uri}")
        print(f"Cost summary: {cost['uri']}")
        print(total_line(cost))
        return summary

    contact_sheet(briefs, gpt_image.output, imagen.output, seedream.output)


with DAG(
    dag_id="aihubmix_marketing_review",
    schedule=[MARKETING_ASSETS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aihubmix", "example"],
) as review_dag:

    @task(inlets=[MARKETING_ASSETS])
    def review_manifests(**context: Any) -> dict[str, Any]:
        """Read the manifests and the cost summary of the run that updated the Asset."""
        from airflow_provider_aihubmix.storage import open_store

        # Scheduled on the Asset: the events that triggered this run. Triggered by hand
        # (or dag.test()): the Asset's latest event, so a manual run reviews the last generation.
        events = context["triggering_asset_events"].get(MARKETING_ASSETS) or list(
            context["inlet_events"][MARKETING_ASSETS][-1:]
        )
        store = open_store(OUTPUT_URI, aws_conn_id="aws_default")
        images = 0
        cost = 0.0
        models: set[str] = set()
        for event in events:
            for uri in event.extra.get("manifests", []):
                manifest = json.loads(store.read_bytes(uri))
                images += len(manifest["records"])
                models.add(manifest["model"])
            if event.extra.get("cost_summary"):
                cost += json.loads(store.read_bytes(event.extra["cost_summary"]))["total"]["actual"] or 0.0
        print(f"Reviewed {images} image(s) from {sorted(models)}; cost {cost:.4f} USD")
        return {"images": images, "models": sorted(models), "cost_usd": round(cost, 6)}

    review_manifests()
