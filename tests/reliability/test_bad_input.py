"""Hypothesis-generated invalid inputs for every model family, given literally or through templates.

Each input is invalid by construction (a mapping where a number or a word is expected, a
number far out of range, an empty prompt, a reference that cannot be read, ``extra_input``
that is not a mapping...). Whatever it is, the operator must raise
:class:`AIHubMixValidationError` -- at DAG parse time or when the task runs -- and the sandbox
must not receive a single request.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from typing import Any

import pendulum
from airflow.sdk import DAG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_aihubmix.catalog.models import CATALOG, Family, ModelSpec, resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.operators.images import AIHubMixGenerateImageOperator
from airflow_provider_aihubmix.schemas import MAX_PROMPT_LENGTH, model_parameters
from tests.reliability.conftest import full_run
from tests.reliability.helpers import TaskRunner, api_requests

AREA = "Bad input"
NEW_MODEL = "acme/new-image-model"  # passed through: only prompt, n and image are checked
SPECS = [*CATALOG.values(), resolve_model(NEW_MODEL)]
CAT = "https://images.example.com/cat.png"
COMMON = ("prompt", "size", "n", "quality", "image", "seed")
LETTERS = st.text(string.ascii_letters, min_size=24, max_size=40)

# Not JSON at all: refused even by the pass-through fields of an unknown model.
NOT_JSON = st.one_of(
    st.builds(object),
    st.binary(min_size=1, max_size=8),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.lists(st.builds(object), min_size=1, max_size=2),
)
# Wrong for every typed field of a catalog family (numbers, choices, flags, free text alike).
WRONG_TYPE = st.one_of(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), min_size=1, max_size=3),
    st.lists(st.dictionaries(st.text(max_size=3), st.integers(), min_size=1), min_size=1, max_size=2),
    st.integers(min_value=10**19, max_value=10**30),
    st.integers(min_value=-(10**30), max_value=-(10**19)),
)
BAD_COUNT = st.one_of(WRONG_TYPE, NOT_JSON, LETTERS, st.sampled_from([0, -1, 11, 1.5, "", "many"]))
BAD_PROMPT = st.one_of(
    st.sampled_from(["", "   ", "\n\t"]),
    st.integers(1, 5).map(lambda extra: "x" * (MAX_PROMPT_LENGTH + extra)),
    st.integers(),
    st.lists(st.integers(), min_size=1, max_size=3),
    WRONG_TYPE,
    NOT_JSON,
)
BAD_IMAGE = st.one_of(
    st.integers(),
    st.dictionaries(st.sampled_from(["url", "path", "href"]), st.text(max_size=8), min_size=1),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.sampled_from(["ftp://example.com/a.png", "gopher://x/y.png", "data:image/png;base64,@@@@"]),
    LETTERS.map(lambda name: f"/nonexistent/{name}.png"),  # read at run time: it does not exist
    st.integers(20, 40).map(lambda count: [CAT] * count),  # more references than any model takes
    NOT_JSON,
)
BAD_EXTRA = st.one_of(st.lists(st.integers(), min_size=1, max_size=3), st.integers(), LETTERS, NOT_JSON)


def _bad_value(spec: ModelSpec, field: str) -> st.SearchStrategy[Any]:
    if field == "prompt":
        return BAD_PROMPT
    if field == "image":
        return BAD_IMAGE
    if field == "n":
        return BAD_COUNT
    if field == "extra_input":
        return BAD_EXTRA
    if spec.family is Family.GENERIC:
        return NOT_JSON
    return st.one_of(WRONG_TYPE, NOT_JSON)


@st.composite
def invalid_call(draw: st.DrawFn) -> tuple[ModelSpec, dict[str, Any]]:
    spec = draw(st.sampled_from(SPECS))
    fields = [*model_parameters(spec), "extra_input"]
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    kwargs: dict[str, Any] = {"model": spec.name if spec.known else NEW_MODEL, "prompt": "a lighthouse"}
    if not spec.text_to_image:
        kwargs["image"] = CAT
    family: dict[str, Any] = {}
    for field in chosen:
        value = draw(_bad_value(spec, field))
        if field in COMMON or field == "extra_input":
            kwargs[field] = value
        else:
            family[field] = value
    kwargs["family_params"] = family
    return spec, kwargs


def _reject(build: Any, counts: Counter[str]) -> None:
    """Build and run the operator; only AIHubMixValidationError may come out, before any request."""
    try:
        build()
    except AIHubMixValidationError:
        counts["parse time"] += 1
        return
    run = TaskRunner(build).run()
    assert isinstance(run.error, AIHubMixValidationError), repr(run.error)
    counts["run time"] += 1


def test_invalid_literal_inputs_for_every_family(api, sandbox, operator_factory, report):
    counts: Counter[str] = Counter()
    families: Counter[str] = Counter()
    examples = 2000 if full_run() else 400

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(call=invalid_call())
    def check(call: tuple[ModelSpec, dict[str, Any]]) -> None:
        spec, kwargs = call
        families[spec.family.value] += 1
        _reject(operator_factory(**kwargs), counts)

    check()
    assert set(families) == {family.value for family in Family}
    assert api_requests(sandbox.client) == [] and sandbox.client.requests(host="storage") == []
    tried = sum(counts.values())
    report.row(
        "bad-input-literal",
        area=AREA,
        scenario="hypothesis: 1-3 invalid parameters per call, every family and a passed-through model",
        expected="AIHubMixValidationError (never another exception) before any request",
        result=f"{tried} invalid inputs refused ({counts['parse time']} at DAG parse time, "
        f"{counts['run time']} at run time); {len(families)} families",
        requests=0,
        billed=0,
        objects=0,
        duplicates=0,
        invalid_inputs=tried,
    )


# Rendered through Jinja: what a template may turn into. With string rendering every value
# arrives as its str(); with render_template_as_native_obj the objects themselves.
TEMPLATED = {
    "n": st.one_of(WRONG_TYPE, st.sampled_from([0, -3, 11, 2.5, "two", [1, 2]])),
    "size": st.one_of(WRONG_TYPE, LETTERS, st.sampled_from([0, -1, "1x1", "99999x99999"])),
    "seed": st.one_of(WRONG_TYPE, st.sampled_from([2**64, "seed", 1.25])),
    "prompt": st.sampled_from(["", "   "]),
    "image": st.one_of(LETTERS.map(lambda name: f"/nonexistent/{name}.png"), st.just("ftp://x/y.png")),
}
CATALOG_SPECS = [spec for spec in CATALOG.values()]


@st.composite
def templated_call(draw: st.DrawFn) -> tuple[ModelSpec, str, Any, bool]:
    spec = draw(st.sampled_from(CATALOG_SPECS))
    fields = [f for f in TEMPLATED if f in model_parameters(spec)]
    field = draw(st.sampled_from(fields))
    return spec, field, draw(TEMPLATED[field]), draw(st.booleans())


def test_templated_values_rendering_to_invalid_types(api, sandbox, out_dir, report):
    counts: Counter[str] = Counter()
    examples = 600 if full_run() else 120

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(call=templated_call())
    def check(call: tuple[ModelSpec, str, Any, bool]) -> None:
        spec, field, value, native = call

        def build() -> Any:
            with DAG(
                f"templated_{len(counts)}",
                schedule=None,
                start_date=pendulum.datetime(2026, 1, 1),
                render_template_as_native_obj=native,
            ):
                kwargs: dict[str, Any] = {"prompt": "a lighthouse"}
                if not spec.text_to_image:
                    kwargs["image"] = CAT
                kwargs[field] = "{{ params.value }}"
                operator = AIHubMixGenerateImageOperator(
                    task_id="generate", model=spec.name, output_uri=out_dir.as_uri(), **kwargs
                )
            operator.render_template_fields({"params": {"value": value}})
            return operator

        run = TaskRunner(build).run()
        assert isinstance(run.error, AIHubMixValidationError), (field, value, native, repr(run.error))
        counts["native" if native else "string"] += 1

    check()
    assert api_requests(sandbox.client) == []
    tried = sum(counts.values())
    report.row(
        "bad-input-templated",
        area=AREA,
        scenario="templated prompt/n/size/seed/image rendering to invalid values "
        "(string and native rendering)",
        expected="AIHubMixValidationError at run time, before any request",
        result=f"{tried} rendered inputs refused ({counts['string']} string, {counts['native']} native)",
        requests=0,
        billed=0,
        objects=0,
        duplicates=0,
        invalid_inputs=tried,
    )
