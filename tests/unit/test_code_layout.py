"""Guards for rules of the code's layout that a reviewer would otherwise have to check."""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_aihubmix
from airflow_provider_aihubmix import exceptions

PACKAGE = Path(airflow_provider_aihubmix.__file__).parent
# Not provider errors: the sandbox is a separate server, Reject is re-raised as a validation
# error, UnknownModelError lives in the catalog the Airflow-free sandbox reads.
ELSEWHERE_ON_PURPOSE = {
    ("sandbox", "ApiError"),
    ("sandbox", "SizeError"),
    ("sandbox", "GoogleError"),
    ("schemas", "Reject"),
    ("catalog", "UnknownModelError"),
}


def _exception_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(b.endswith(("Error", "Exception")) for b in bases) or node.name.endswith("Error"):
                names.append(node.name)
    return names


def test_every_exception_is_defined_in_exceptions_module() -> None:
    strays = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "exceptions.py" and path.parent == PACKAGE:
            continue
        top = path.relative_to(PACKAGE).parts[0]
        for name in _exception_classes(path):
            if (top, name) not in ELSEWHERE_ON_PURPOSE:
                strays.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert strays == []


def test_exceptions_docstring_draws_every_class() -> None:
    doc = exceptions.__doc__ or ""
    missing = [name for name in exceptions.__all__ if name not in doc]
    assert missing == []
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), Exception)


# -- family operators and their schemas ---------------------------------------------------------


def _family_operators() -> list[type]:
    from airflow_provider_aihubmix.operators import images

    return [
        cls
        for cls in vars(images).values()
        if isinstance(cls, type)
        and issubclass(cls, images.AIHubMixGenerateImageOperator)
        and cls.family is not None
    ]


def test_every_family_operator_types_exactly_its_schema_parameters() -> None:
    import inspect

    from airflow_provider_aihubmix.operators.generic import REQUEST_PARAMS
    from airflow_provider_aihubmix.schemas import schema_for

    operators = _family_operators()
    assert len(operators) >= 8
    for cls in operators:
        schema = schema_for(cls.family)
        typed = {
            name
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        wanted = set(schema.model_fields) - set(REQUEST_PARAMS) - schema.refused
        # A typed parameter may also be an older spelling the schema still reads (iRAG ``mode``).
        assert typed - set(schema.aliases) == wanted, cls.__name__
        assert all(schema.canonical(name) in schema.model_fields for name in typed), cls.__name__


# -- parse-time cost ----------------------------------------------------------------------------


def test_importing_the_operators_loads_no_http_s3_or_hook_module() -> None:
    """DAG parsing imports ``operators.images``: the hook, httpx and boto3 load only when a task runs.

    Airflow's own ``BaseOperator`` already loads httpx (the Task SDK's client), so the check is on
    what importing the operators adds to a fresh interpreter that has imported Airflow.
    """
    import json
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from airflow.sdk import BaseOperator, BaseOperatorLink\n"
        "from airflow.sdk.execution_time.xcom import XCom\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_aihubmix.operators.images\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    added = json.loads(done.stdout.strip().splitlines()[-1])
    assert "airflow_provider_aihubmix.operators.images" in added  # the probe measured something
    heavy = (
        "httpx",
        "httpcore",
        "boto3",
        "botocore",
        "airflow_provider_aihubmix.hooks",
        "airflow_provider_aihubmix.http",
        "airflow_provider_aihubmix.http",
        "airflow_provider_aihubmix.storage",
        "airflow_provider_aihubmix.engine",
    )
    assert [m for m in added if m.split(".")[0] in heavy or m.startswith(heavy)] == []
