"""The local-state audit: file:// output on a remote executor warns, with the fix, at parse time."""

from __future__ import annotations

import warnings

import pytest

from airflow_provider_aihubmix.operators.images import AIHubMixGenerateImageOperator
from airflow_provider_aihubmix.storage.locality import (
    AIHubMixLocalOutputWarning,
    executor_names,
    filesystem_type,
    is_shared_directory,
    local_output_problem,
)

MOUNTS = [("/", "overlay"), ("/mnt/shared", "nfs4"), ("/mnt/shared/local", "ext4"), ("/data", "fuse.s3fs")]


@pytest.mark.parametrize(
    ("configured", "names"),
    [
        ("LocalExecutor", ["LocalExecutor"]),
        ("CeleryExecutor", ["CeleryExecutor"]),
        ("LocalExecutor,CeleryExecutor", ["LocalExecutor", "CeleryExecutor"]),
        ("airflow.providers.celery.executors.celery_executor.CeleryExecutor", ["CeleryExecutor"]),
        ("gpu:my_company.executors.GpuExecutor", ["GpuExecutor"]),
    ],
)
def test_executor_names_read_every_spelling_of_core_executor(
    monkeypatch: pytest.MonkeyPatch, configured: str, names: list[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", configured)
    assert executor_names() == names


def test_a_task_level_executor_wins_over_the_configured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    assert executor_names("LocalExecutor") == ["LocalExecutor"]
    assert local_output_problem("file:///tmp/images", executor="LocalExecutor") is None


def test_filesystem_type_is_the_longest_mount_holding_the_directory() -> None:
    assert filesystem_type("/mnt/shared/team/images", MOUNTS) == "nfs4"
    assert filesystem_type("/mnt/shared/local/images", MOUNTS) == "ext4"
    assert filesystem_type("/mnt/sharedother", MOUNTS) == "overlay"
    assert is_shared_directory("/mnt/shared/team", MOUNTS)
    assert is_shared_directory("/data/x", MOUNTS)
    assert not is_shared_directory("/mnt/shared/local/x", MOUNTS)
    assert not is_shared_directory("/opt/airflow/aihubmix-images", MOUNTS)


def test_file_output_on_celery_names_the_problem_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    problem = local_output_problem("file:///opt/airflow/aihubmix-images")
    assert problem is not None
    assert "CeleryExecutor" in problem and "s3://" in problem and "shared_output_dirs" in problem
    assert local_output_problem("s3://bucket/images") is None
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    assert local_output_problem("file:///opt/airflow/aihubmix-images") is None


def test_a_declared_shared_directory_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor")
    monkeypatch.setenv("AIRFLOW__AIHUBMIX__SHARED_OUTPUT_DIRS", "/srv/a, /mnt/nas")
    assert local_output_problem("file:///mnt/nas/images") is None
    assert local_output_problem("file:///mnt/nasty/images") is not None


def test_operator_warns_at_parse_time_for_literal_file_output_on_celery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.warns(AIHubMixLocalOutputWarning, match="will not\\s+find these images"):
        AIHubMixGenerateImageOperator(
            task_id="t", model="qwen-image", prompt="p", output_uri="file:///opt/airflow/images"
        )
    with pytest.warns(AIHubMixLocalOutputWarning):
        AIHubMixGenerateImageOperator.partial(
            task_id="m", model="qwen-image", output_uri="file:///opt/airflow/images"
        ).expand(prompt=["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", AIHubMixLocalOutputWarning)
        AIHubMixGenerateImageOperator(
            task_id="s", model="qwen-image", prompt="p", output_uri="s3://bucket/images"
        )
        AIHubMixGenerateImageOperator(
            task_id="l",
            model="qwen-image",
            prompt="p",
            output_uri="file:///opt/airflow/images",
            executor="LocalExecutor",
        )
