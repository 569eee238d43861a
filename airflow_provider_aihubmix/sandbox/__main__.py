"""``aihubmix-sandbox`` (``python -m airflow_provider_aihubmix.sandbox``): the sandbox in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_aihubmix.sandbox.server import SandboxServer


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="aihubmix-sandbox",
        description="A local AIHubMix-compatible API and image storage for offline DAG development.",
    )
    parser.add_argument("--host", default=env("AIHUBMIX_SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("AIHUBMIX_SANDBOX_PORT", "8787")),
        help="API port (0 picks a free one); default 8787",
    )
    parser.add_argument(
        "--storage-port",
        type=int,
        default=int(env("AIHUBMIX_SANDBOX_STORAGE_PORT", "8788")),
        help="image storage port (0 picks a free one); default 8788",
    )
    parser.add_argument(
        "--task-delay",
        type=float,
        default=float(env("AIHUBMIX_SANDBOX_TASK_DELAY", "2.0")),
        help="seconds until an async (Flux) task is Ready; default 2.0",
    )
    parser.add_argument(
        "--api-key",
        default=env("AIHUBMIX_SANDBOX_API_KEY"),
        help="accept only this key (default: any bearer key); env AIHUBMIX_SANDBOX_API_KEY",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=int(env("AIHUBMIX_SANDBOX_MAX_SIDE", "1024")),
        help="cap on the longer image side, aspect kept (0 = honest sizes); default 1024",
    )
    parser.add_argument(
        "--status-style",
        choices=("bfl", "lower", "completed"),
        default="bfl",
        help="task status spelling: Ready (bfl), succeeded (lower) or completed",
    )
    parser.add_argument(
        "--huge-bytes",
        type=int,
        default=8 * 1024 * 1024,
        help="body size served by the 'huge' storage fault; default 8 MiB",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    server = SandboxServer(
        args.host,
        args.port,
        args.storage_port,
        task_delay_s=args.task_delay,
        api_key=args.api_key,
        max_side=args.max_side,
        status_style=args.status_style,
        huge_bytes=args.huge_bytes,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    # Tests parse this line; the API key is never printed.
    print(f"AIHubMix sandbox listening on {server.base_url} (storage {server.storage_url})", flush=True)
    try:
        while server.running and not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
