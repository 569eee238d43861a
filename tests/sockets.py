"""Byte-for-byte TCP forwarding for the test proxies (S3 outages, slow gateways)."""

from __future__ import annotations

import contextlib
import socket
import threading


def splice(client: socket.socket, upstream: socket.socket) -> None:
    """Forward bytes both ways on daemon threads; either side closing closes both."""
    for source, target in ((client, upstream), (upstream, client)):
        threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        close_quietly(target)
        close_quietly(source)


def close_quietly(sock: socket.socket) -> None:
    """Shut down and close, ignoring a socket the other side already closed."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
