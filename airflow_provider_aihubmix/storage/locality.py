"""Where a deployment's workers do not share a disk: the check for ``file://`` output.

With LocalExecutor every task runs on one machine, so images under ``file://`` (the default
is ``$AIRFLOW_HOME/aihubmix-images``) are where the next task looks. With CeleryExecutor,
KubernetesExecutor or any other remote executor, a retry or a downstream task can run on
another worker that has never seen that directory: its images are missing there, and a retry
cannot read the manifest that would stop it from buying again. :func:`local_output_problem`
says so, and how to fix it, unless the directory is on storage every worker shares.

"Shared" means either declared -- ``[aihubmix] shared_output_dirs`` (``AIRFLOW__AIHUBMIX__
SHARED_OUTPUT_DIRS``), a comma-separated list of directories mounted on every worker -- or
on a network file system according to ``/proc/mounts`` of the machine that runs the check.
The check runs where the DAG is parsed, which is not always where tasks run: declare the
directory when the parsing host's mounts differ from the workers'.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import PurePosixPath

from airflow_provider_aihubmix.storage.uris import file_uri_to_path

#: Executors that run every task on the machine that schedules it.
LOCAL_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})
#: File system types (``/proc/mounts``) that several machines can mount at once.
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "ocfs2", "gfs2"}
)
#: FUSE drivers for shared or object storage (``fuse.<driver>`` in ``/proc/mounts``).
NETWORK_FUSE = frozenset(
    {"glusterfs", "sshfs", "s3fs", "gcsfuse", "juicefs", "goofys", "mountpoint-s3", "efs"}
)


class AIHubMixLocalOutputWarning(UserWarning):
    """Images go to a ``file://`` directory that other workers of this deployment cannot see."""


def executor_names(executor: str | None = None) -> list[str]:
    """Class names of the executors tasks may run on: the task's own, else ``[core] executor``.

    ``[core] executor`` may list several (``LocalExecutor,CeleryExecutor``), give an alias
    (``my_alias:path.to.Executor``) or a full import path; each becomes its class name.
    """
    if executor:
        configured = executor
    else:
        from airflow.configuration import conf

        configured = conf.get("core", "executor", fallback="LocalExecutor") or "LocalExecutor"
    names = []
    for entry in configured.split(","):
        entry = entry.strip()
        if entry:
            names.append(entry.rsplit(":", 1)[-1].rsplit(".", 1)[-1])
    return names or ["LocalExecutor"]


def shared_output_dirs() -> list[str]:
    """The directories declared shared by ``[aihubmix] shared_output_dirs``."""
    from airflow.configuration import conf

    raw = conf.get("aihubmix", "shared_output_dirs", fallback="") or ""
    return [os.path.normpath(part.strip()) for part in raw.split(",") if part.strip()]


def _mounts(path: str = "/proc/mounts") -> list[tuple[str, str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            rows = [line.split() for line in handle]
    except OSError:
        return []
    # Mount points escape spaces as \040.
    return [(row[1].replace("\\040", " "), row[2]) for row in rows if len(row) >= 3]


def filesystem_type(directory: str, mounts: Iterable[tuple[str, str]] | None = None) -> str | None:
    """The type of the file system ``directory`` is on (longest mount point that holds it)."""
    target = PurePosixPath(os.path.normpath(directory))
    best: tuple[int, str] | None = None
    for point, fstype in _mounts() if mounts is None else mounts:
        mount = PurePosixPath(point)
        if (target == mount or mount in target.parents) and (best is None or len(mount.parts) > best[0]):
            best = (len(mount.parts), fstype)
    return best[1] if best else None


def is_shared_directory(directory: str, mounts: Iterable[tuple[str, str]] | None = None) -> bool:
    """True if ``directory`` is declared shared or sits on a network file system."""
    target = PurePosixPath(os.path.normpath(directory))
    for shared in shared_output_dirs():
        root = PurePosixPath(shared)
        if target == root or root in target.parents:
            return True
    fstype = filesystem_type(directory, mounts) or ""
    if fstype.startswith("fuse."):
        return fstype.removeprefix("fuse.") in NETWORK_FUSE
    return fstype in NETWORK_FILESYSTEMS


def local_output_problem(output_uri: str, *, executor: str | None = None) -> str | None:
    """The warning text if ``output_uri`` is a worker-local directory on a remote executor, else None.

    :param output_uri: a checked ``output_uri`` (``s3://`` is always fine).
    :param executor: the task's own ``executor``, if it sets one.
    """
    if not output_uri.lower().startswith("file:"):
        return None
    remote = [name for name in executor_names(executor) if name not in LOCAL_EXECUTORS]
    if not remote:
        return None

    directory = file_uri_to_path(output_uri)
    if is_shared_directory(directory):
        return None
    return (
        f"output_uri {output_uri!r} is a directory on the worker's own disk, but tasks run on "
        f"{', '.join(remote)}: a retry, a downstream task or a triggerer on another machine will not "
        "find these images, nor the manifest that stops a retry from paying again. Use output_uri='s3://bucket/"
        "prefix' (with output_conn_id), or a directory mounted on every worker -- and list it in "
        "[aihubmix] shared_output_dirs (AIRFLOW__AIHUBMIX__SHARED_OUTPUT_DIRS) if it is not on a "
        "network file system this machine can recognise."
    )


def warn_if_local_output(output_uri: str, *, executor: str | None = None, stacklevel: int = 3) -> str | None:
    """Emit :class:`AIHubMixLocalOutputWarning` when :func:`local_output_problem` finds one."""
    problem = local_output_problem(output_uri, executor=executor)
    if problem is not None:
        warnings.warn(problem, AIHubMixLocalOutputWarning, stacklevel=stacklevel)
    return problem
