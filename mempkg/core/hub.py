"""Is the Hugging Face Hub reachable? One quick check per process, and offline mode when not (layer: core).

Without a network, ``huggingface_hub`` retries every request with back-off before it looks in its local
cache: about 25 seconds of "Retrying in 8s" lines per file before the clear error. :func:`local_only`
opens one TCP connection to the Hub's host (a few seconds at most) the first time a hub id is used;
when that fails, or ``HF_HUB_OFFLINE`` is set, it switches ``huggingface_hub`` to offline mode for the
rest of the process and callers pass ``local_files_only=True``: a cached model loads at once and a
missing one fails at once with the caller's message.
"""

from __future__ import annotations

import functools
import os
import socket
import urllib.parse

import huggingface_hub.constants as hub_constants

__all__ = ["CONNECT_TIMEOUT_S", "hub_reachable", "local_only"]

CONNECT_TIMEOUT_S = 3.0


@functools.lru_cache(maxsize=None)
def hub_reachable(endpoint: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub's host opens within ``timeout`` seconds (checked once per
    endpoint and process). ``endpoint`` defaults to ``huggingface_hub``'s (``$HF_ENDPOINT`` or
    https://huggingface.co)."""
    url = urllib.parse.urlsplit(endpoint or hub_constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def local_only() -> bool:
    """True when the Hub must not be asked: ``HF_HUB_OFFLINE`` is set, or the Hub is unreachable (then
    offline mode is switched on for the rest of the process, so that no library retries either)."""
    if hub_constants.HF_HUB_OFFLINE:
        return True
    if hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_constants.HF_HUB_OFFLINE = True
    return True
