"""The gallery's FastAPI app, mounted by the api-server at ``/aihubmix``.

Routes (every one but the static assets checks the caller's DAG permission with Airflow's
own ``requires_access_dag`` -- the check behind the DAG-run and task-instance endpoints):

* ``GET /gallery/{dag_id}/{run_id}[?task_id=&map_index=]`` -- the gallery page;
* ``GET /api/gallery/{dag_id}/{run_id}[?task_id=&map_index=&model=&state=&prompt=&offset=&limit=]``
  -- one page of what the page shows, as JSON, with the run's summary and per-filter counts;
* ``GET /api/images/{dag_id}/{run_id}/{task_id}/{map_index}/{name}`` -- one stored image,
  streamed from the task's own store with the task's connection;
* ``GET /api/thumbs/{dag_id}/{run_id}/{task_id}/{map_index}/{name}`` -- the WebP thumbnail of
  image ``name`` (same check: the manifest must record the image), made on first view if missing;
* ``GET /static/...`` -- the page's script and style sheet (no data in them).

The caller is identified as everywhere in the api-server: ``Authorization: Bearer`` or the
UI's ``_token`` cookie, which the UI's iframe sends with every request.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from airflow_provider_aihubmix.gallery.index import (
    RunCache,
    Version,
    clamp_page,
    counts,
    matches,
    page,
    summary,
)
from airflow_provider_aihubmix.gallery.manifests import (
    ImageNotServedError,
    TaskRef,
    outcome,
    read_manifest,
    resolve_image,
    servable_images,
    task_view,
)
from airflow_provider_aihubmix.gallery.runs import TaskInstanceRow, run_exists, task_instances
from airflow_provider_aihubmix.pricing.reservations import RunLedger, ledger_store
from airflow_provider_aihubmix.storage import (
    SNIFF_HEAD_BYTES,
    AIHubMixStorageError,
    NotAnImageError,
    ObjectStore,
    encode_key_part,
    open_store,
    sniff_image,
)
from airflow_provider_aihubmix.storage.base import READ_CHUNK_BYTES
from airflow_provider_aihubmix.storage.thumbnails import make_thumbnail, thumbnail_key

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
#: The longest a presigned image URL may live (seconds).
MAX_PRESIGNED_SECONDS = 3600
#: The largest image the gallery reads to make a missing thumbnail (bytes).
MAX_THUMBNAIL_SOURCE_BYTES = 64 * 1024 * 1024
# Images never change under their key within a try; a short private cache keeps grids snappy.
_IMAGE_HEADERS = {
    "Cache-Control": "private, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}

RunAccess = [
    Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN)),
    Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE)),
]
TaskAccess = [Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE))]


def _root(request: Request) -> str:
    """Where the app is mounted, as the browser sees it (``/aihubmix``, behind any base path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _segments(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


def image_path(request: Request, ref: TaskRef, name: str, *, kind: str = "images") -> str:
    """The URL path an image (``kind="thumbs"``: its thumbnail) is served from (ids as single segments)."""
    ids = _segments(ref.dag_id, ref.run_id, ref.task_id, str(ref.map_index), name)
    return f"{_root(request)}/api/{kind}/{ids}"


def _map_index(value: str | None) -> int | None:
    """``map_index`` from a query string; the UI leaves ``{MAP_INDEX}`` unfilled for unmapped tasks."""
    if value is None or value == "":
        return None
    try:
        index = int(value)
    except ValueError:
        return None
    return index if index >= -1 else None


# Opened stores, shared by requests: an S3 client costs ~0.5 s to build and is thread-safe.
# Entries expire so a changed connection is picked up.
_STORE_TTL_S = 300.0
_STORE_CACHE_SIZE = 32
_stores: dict[tuple[str, str | None], tuple[float, ObjectStore]] = {}
_stores_lock = threading.Lock()


def _open(location: dict[str, Any]) -> ObjectStore:
    """The store a task wrote to, through its own connection."""
    key = (location["output_uri"], location.get("conn_id"))
    now = time.monotonic()
    with _stores_lock:
        cached = _stores.get(key)
        if cached is not None and now - cached[0] < _STORE_TTL_S:
            return cached[1]
    store = open_store(key[0], aws_conn_id=key[1])
    with _stores_lock:
        if len(_stores) >= _STORE_CACHE_SIZE:
            _stores.pop(min(_stores, key=lambda k: _stores[k][0]))
        _stores[key] = (now, store)
    return store


def _task_entry(request: Request, dag_id: str, run_id: str, row: TaskInstanceRow) -> dict[str, Any]:
    ref = TaskRef(dag_id, run_id, row.task_id, row.map_index)
    entry: dict[str, Any] = {
        "task_id": row.task_id,
        "map_index": row.map_index,
        "state": row.state,
        "try_number": row.try_number,
        "operator": row.operator,
        "output_uri": row.location["output_uri"] if row.location else None,
        "note": None,
    }
    manifest = None
    view: dict[str, Any] = {"manifest": None, "images": []}
    if row.location is not None:
        try:
            store = _open(row.location)
            manifest = read_manifest(store, ref)
            images = servable_images(store, ref, manifest) if manifest else {}

            def src(name: str) -> str:
                return image_path(request, ref, name)

            def thumb(name: str) -> str:
                return image_path(request, ref, name, kind="thumbs")

            view = task_view(
                ref,
                manifest,
                images,
                show_prompt=row.location["show_prompt"],
                image_src=src,
                thumb_src=thumb,
            )
        except AIHubMixStorageError as err:
            log.warning("Gallery: cannot read the manifest of %s: %s", ref, err)
            entry["note"] = f"the manifest cannot be read: {err}"
    entry["outcome"] = outcome(manifest, row.state)
    if manifest is None and entry["note"] is None:
        entry["note"] = "no images recorded yet" if row.state not in ("failed", "upstream_failed") else None
    return {**entry, **view}


#: The run entries of recently viewed runs (see :mod:`.index`).
RUN_CACHE = RunCache()


def run_entries(request: Request, session: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every task entry of the run, from the cache; manifests read only for tasks that changed."""
    rows = task_instances(session, dag_id, run_id)
    keyed = [
        (
            (row.task_id, row.map_index),
            Version(row.state, row.try_number, repr(sorted(row.location.items())) if row.location else None),
            row,
        )
        for row in rows
    ]
    key = (_root(request), dag_id, run_id)
    entries, changed = RUN_CACHE.refresh(key, keyed, lambda row: _task_entry(request, dag_id, run_id, row))
    budgets = RUN_CACHE.derive(key, lambda: budget_reports(rows, dag_id, run_id), changed=changed)
    if not budgets:
        return entries
    return [{**entry, "budget": budget_for(budgets, entry)} for entry in entries]


def budget_for(budgets: dict[str, dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any] | None:
    """The ledger's row for ``entry``: by its label, or as a refused task's file is named (encoded)."""
    label = task_label(entry)
    return budgets.get(label) or budgets.get(encode_key_part(label))


def task_label(entry: dict[str, Any]) -> str:
    """How the DAG budget's ledger names a task instance (``task`` or ``task[3]``)."""
    index = entry["map_index"]
    return entry["task_id"] if index < 0 else f"{entry['task_id']}[{index}]"


def budget_reports(rows: list[TaskInstanceRow], dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The DAG budget's reservations, actual spend and refusals per task (:meth:`RunLedger.report`).

    Read from the ledger beside each store the run's tasks wrote to (the bucket root on S3, the
    ``output_uri`` on disk), as :func:`~..pricing.reservations.ledger_store` places it; a ledger a
    DAG put elsewhere (``max_cost_ledger_uri``) is not found here. ``{}`` when no task reserved.
    """
    reports: dict[str, dict[str, Any]] = {}
    places = {(r.location["output_uri"], r.location.get("conn_id")) for r in rows if r.location}
    for output_uri, conn_id in sorted(places, key=str):
        try:
            store = ledger_store(_open({"output_uri": output_uri, "conn_id": conn_id}))
            report = RunLedger(store, dag_id, run_id).report()
        except (AIHubMixStorageError, NotImplementedError, OSError, KeyError, TypeError) as err:
            log.warning("Gallery: cannot read the DAG budget's ledger beside %s: %s", output_uri, err)
            continue
        for label, row in report["tasks"].items():
            reports.setdefault(label, row)
    return reports


def gallery_data(
    request: Request,
    session: Any,
    dag_id: str,
    run_id: str,
    task_id: str | None,
    map_index: int | None,
    *,
    filters: dict[str, str] | None = None,
    offset: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """One page of the run's cards (``tasks``), the run's ``summary``, per-filter ``counts`` and ``page``."""
    if not run_exists(session, dag_id, run_id):
        raise HTTPException(404, f"DAG run {run_id!r} of DAG {dag_id!r} not found")
    wanted = dict(filters or {})
    if task_id is not None:
        wanted["task_id"] = task_id
    if map_index is not None:
        wanted["map_index"] = str(map_index)
    entries = run_entries(request, session, dag_id, run_id)
    shown = [entry for entry in entries if matches(entry, wanted)]
    start, size = clamp_page(offset, limit)
    tasks, paging = page(shown, start, size)
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "filters": wanted,
        "tasks": tasks,
        "page": paging,
        "summary": summary(shown),
        "run_summary": summary(entries),
        "counts": counts(entries, wanted),
    }


def _stream(store: ObjectStore, key: str) -> StreamingResponse:
    """Stream the object at ``key`` once its first bytes prove it is an image (sniffed, not trusted)."""
    stack = ExitStack()
    try:
        stream = stack.enter_context(store.open_read(key))
        head = stream.read(SNIFF_HEAD_BYTES)
        info = sniff_image(head)
    except (AIHubMixStorageError, OSError) as err:
        stack.close()
        status = 415 if isinstance(err, NotAnImageError) else 404
        raise HTTPException(status, "image not found" if status == 404 else "not an image") from None
    except BaseException:
        stack.close()
        raise

    def chunks() -> Iterator[bytes]:
        with stack:
            yield head
            while chunk := stream.read(READ_CHUNK_BYTES):
                yield chunk

    return StreamingResponse(chunks(), media_type=info.content_type, headers=_IMAGE_HEADERS)


def _page(request: Request, dag_id: str, run_id: str, task_id: str | None, map_index: int | None) -> str:
    api = f"{_root(request)}/api/gallery/{_segments(dag_id, run_id)}"
    query = []
    if task_id is not None:
        query.append(f"task_id={quote(task_id, safe='')}")
    if map_index is not None:
        query.append(f"map_index={map_index}")
    if query:
        api += "?" + "&".join(query)
    template = (STATIC_DIR / "gallery.html").read_text(encoding="utf-8")
    title = f"{dag_id} / {run_id}" + (f" / {task_id}" if task_id else "")
    return (
        template.replace("{{title}}", html.escape(title))
        .replace("{{api}}", html.escape(api, quote=True))
        .replace("{{static}}", html.escape(f"{_root(request)}/static", quote=True))
    )


async def _login_first(request: Request, exc: Exception) -> Response:
    """A person opening the page without a session goes to the login page and comes back."""
    page = request.url.path[len(_root(request)) :].startswith("/gallery/")
    if isinstance(exc, HTTPException) and exc.status_code == 401 and page:
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return await http_exception_handler(request, cast("HTTPException", exc))


def create_app() -> FastAPI:
    """Build the gallery app (the api-server mounts it at :data:`~.urls.APP_PREFIX`)."""
    app = FastAPI(title="AIHubMix image gallery", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(HTTPException, _login_first)

    @app.get("/gallery/{dag_id}/{run_id}", name="gallery_page", dependencies=RunAccess)
    def gallery_page(
        request: Request,
        session: SessionDep,
        dag_id: str,
        run_id: str,
        task_id: Annotated[str | None, Query()] = None,
        map_index: Annotated[str | None, Query()] = None,
    ) -> HTMLResponse:
        if not run_exists(session, dag_id, run_id):
            raise HTTPException(404, f"DAG run {run_id!r} of DAG {dag_id!r} not found")
        body = _page(request, dag_id, run_id, task_id or None, _map_index(map_index))
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    @app.get("/api/gallery/{dag_id}/{run_id}", name="gallery_json", dependencies=RunAccess)
    def gallery_json(
        request: Request,
        session: SessionDep,
        dag_id: str,
        run_id: str,
        task_id: Annotated[str | None, Query()] = None,
        map_index: Annotated[str | None, Query()] = None,
        model: Annotated[str | None, Query()] = None,
        state: Annotated[str | None, Query()] = None,
        prompt: Annotated[str | None, Query(description="a prompt's sha256: the compare view")] = None,
        offset: Annotated[int | None, Query(ge=0)] = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        filters = {k: v for k, v in (("model", model), ("state", state), ("prompt", prompt)) if v}
        return gallery_data(
            request,
            session,
            dag_id,
            run_id,
            task_id or None,
            _map_index(map_index),
            filters=filters,
            offset=offset,
            limit=limit,
        )

    @app.get(
        "/api/images/{dag_id}/{run_id}/{task_id}/{map_index}/{name}",
        name="gallery_image",
        dependencies=TaskAccess,
    )
    def gallery_image(
        session: SessionDep, dag_id: str, run_id: str, task_id: str, map_index: int, name: str
    ) -> Response:
        store, key = _servable(session, TaskRef(dag_id, run_id, task_id, map_index), name)
        return _presigned(store, key) or _stream(store, key)

    @app.get(
        "/api/thumbs/{dag_id}/{run_id}/{task_id}/{map_index}/{name}",
        name="gallery_thumbnail",
        dependencies=TaskAccess,
    )
    def gallery_thumbnail(
        session: SessionDep, dag_id: str, run_id: str, task_id: str, map_index: int, name: str
    ) -> Response:
        """The thumbnail of image ``name`` -- made (and kept beside it) on first view when missing."""
        store, key = _servable(session, TaskRef(dag_id, run_id, task_id, map_index), name)
        thumb = thumbnail_key(key)
        if store.exists(thumb):
            return _presigned(store, thumb) or _stream(store, thumb)
        return _first_thumbnail(store, key)

    return app


def presigned_url_seconds() -> int:
    """``[aihubmix] gallery_presigned_url_seconds``: 0 (the default) streams every image through
    the api-server; N > 0 redirects the browser to a presigned URL valid N seconds (at most
    3600: S3, GCS and Azure stores whose credentials can sign), made only after the same DAG
    permission and manifest checks as a streamed image."""
    from airflow.configuration import conf

    seconds = conf.getint("aihubmix", "gallery_presigned_url_seconds", fallback=0)
    return max(0, min(seconds, MAX_PRESIGNED_SECONDS))


def _presigned(store: ObjectStore, key: str) -> Response | None:
    """A redirect to a presigned URL of ``key`` when they are switched on and the store signs them."""
    seconds = presigned_url_seconds()
    url = store.presigned_url(key, seconds) if seconds else None
    if url is None:
        return None
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})


def _servable(session: Any, ref: TaskRef, name: str) -> tuple[ObjectStore, str]:
    """The store and key of image ``name`` of ``ref``, when its manifest records it (else 404)."""
    rows = task_instances(session, ref.dag_id, ref.run_id, task_id=ref.task_id, map_index=ref.map_index)
    location = rows[0].location if rows else None
    if location is None:
        raise HTTPException(404, "no images recorded for this task instance")
    try:
        store = _open(location)
        return store, resolve_image(store, ref, read_manifest(store, ref), name)
    except ImageNotServedError as err:
        raise HTTPException(404, str(err)) from None
    except AIHubMixStorageError as err:
        log.warning("Gallery: cannot read the manifest of %s: %s", ref, err)
        raise HTTPException(404, "the manifest cannot be read") from None


def _first_thumbnail(store: ObjectStore, key: str) -> Response:
    """Make the missing thumbnail of the image at ``key`` (an older run's), keep it, and send it."""
    try:
        data = store.read_bytes(key, max_bytes=MAX_THUMBNAIL_SOURCE_BYTES)
        sniff_image(data[:SNIFF_HEAD_BYTES])
        thumb = make_thumbnail(data)
    except (AIHubMixStorageError, OSError, ValueError) as err:
        log.warning("Gallery: no thumbnail for %s: %s", key, err)
        raise HTTPException(404, "no thumbnail for this image") from None
    try:
        store.put_image_bytes(thumbnail_key(key).removesuffix(".webp"), thumb, metadata={})
    except (AIHubMixStorageError, OSError) as err:  # a read-only connection: send it, make it again next time
        log.warning("Gallery: cannot keep the thumbnail of %s: %s", key, err)
    return Response(thumb, media_type="image/webp", headers=_IMAGE_HEADERS)


__all__ = ["create_app", "gallery_data"]
