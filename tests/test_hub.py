"""core.hub: one connection attempt decides whether the Hub is asked at all."""

from __future__ import annotations

import socket

import huggingface_hub.constants as hub_constants

from mempkg.core import hub


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_reachable_only_when_something_listens():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        assert hub.hub_reachable(f"http://127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
    assert not hub.hub_reachable(f"http://127.0.0.1:{closed_port()}")


def test_an_unreachable_hub_switches_offline_mode_on_once(monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub.hub_reachable.cache_clear()
    try:
        assert hub.local_only() is True
        assert hub_constants.HF_HUB_OFFLINE is True
    finally:
        hub.hub_reachable.cache_clear()


def test_offline_mode_set_by_the_user_is_taken_without_a_connection(monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)

    def no_network(*a, **k):
        raise AssertionError("no connection may be tried when HF_HUB_OFFLINE is set")
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert hub.local_only() is True
