"""Airflow's ``[core] hostname_callable`` for the distributed tests: each process's node name.

Every component of the test cluster runs on one machine, so the real host name cannot tell
the two workers (or the two triggerers) apart. Each component gets ``AIHUBMIX_NODE_NAME``
in its environment instead, and Airflow records it in ``task_instance.hostname`` and
``job.hostname`` as it would record a real host's name.
"""

from __future__ import annotations

import os
import socket


def node_name() -> str:
    """Return ``$AIHUBMIX_NODE_NAME``, else the machine's fully qualified name."""
    return os.environ.get("AIHUBMIX_NODE_NAME") or socket.getfqdn()
