"""Which Host and Origin values a server answers for (pure rules, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import ConfigurationError
from sluice.server.served_hosts import is_loopback, served_hosts
from sluice.settings import load_settings


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("127.0.0.1:4200", True), ("127.0.0.1", True), ("localhost:4200", True),
        ("LOCALHOST:4200", True), ("localhost.:4200", True), ("[::1]:4200", True),
        ("127.9.9.9", True), ("evil.example:4200", False), ("evil.example", False),
        ("10.0.0.5:4200", False), ("localhost.evil.example", False), ("", False),
        ("user@localhost", False), ("localhost:notaport", False), ("[::1", False),
    ],
)  # fmt: skip
def test_a_loopback_bind_serves_loopback_names_only(host: str, served: bool) -> None:
    assert served_hosts("127.0.0.1").allows_host(host) is served


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("192.168.1.20:4200", True), ("[fe80::1]:4200", True), ("127.0.0.1", True),
        ("localhost", True), ("buildbox:4200", True), ("evil.example", False),
        ("buildbox.evil.example", False),
    ],
)  # fmt: skip
def test_a_wildcard_bind_serves_any_address_and_the_machine_s_name(host: str, served: bool) -> None:
    # An address literal cannot be rebound to another server: only names can.
    assert served_hosts("0.0.0.0", machine_name="buildbox").allows_host(host) is served
    assert served_hosts("::", machine_name="BuildBox").allows_host(host) is served


def test_a_named_or_addressed_bind_serves_itself() -> None:
    hosts = served_hosts("10.0.0.5")
    assert hosts.allows_host("10.0.0.5:4200")
    assert not hosts.allows_host("10.0.0.6:4200") and not hosts.allows_host("localhost:4200")
    assert served_hosts("sluice.lan").allows_host("Sluice.LAN:4200")


def test_allowed_hosts_add_names_with_or_without_a_port() -> None:
    hosts = served_hosts("127.0.0.1", " sluice.example.com , lan-box:8080 ,")
    assert hosts.allows_host("sluice.example.com")
    assert hosts.allows_host("sluice.example.com:8443")
    assert hosts.allows_host("lan-box:8080")
    assert not hosts.allows_host("lan-box:8081") and not hosts.allows_host("lan-box")
    assert hosts.allows_host("localhost:4200")  # the bind's own names stay
    assert served_hosts("127.0.0.1", "*").allows_host("anything.example")


def test_a_malformed_allowed_host_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'http://x/y'"):
        served_hosts("127.0.0.1", "ok.example, http://x/y")


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:4200", "127.0.0.1:4200", True),  # the UI itself
        ("http://localhost:4200", "localhost:4200", True),
        ("http://[::1]:4200", "[::1]:4200", True),
        ("http://127.0.0.1:8000", "127.0.0.1:4200", False),  # another port: another origin
        ("http://localhost:8000", "127.0.0.1:4200", False),
        ("http://localhost:4200", "127.0.0.1:4200", False),  # same server, another origin
        ("http://evil.example", "127.0.0.1:4200", False),
        ("null", "127.0.0.1:4200", False),
        ("file://", "127.0.0.1:4200", False),
        ("http://127.0.0.1:4200", None, False),
        ("https://sluice.example.com", "127.0.0.1:4200", True),  # configured (a proxy)
        ("https://sluice.example.com:9999", "127.0.0.1:4200", True),
        ("http://lan-box:8080", "127.0.0.1:4200", True),
        ("http://lan-box:8081", "127.0.0.1:4200", False),
    ],
)
def test_origins_are_the_request_s_own_or_configured(
    origin: str, host: str | None, allowed: bool
) -> None:
    hosts = served_hosts("127.0.0.1", "sluice.example.com,lan-box:8080")
    assert hosts.allows_origin(origin, host) is allowed


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("LocalHost.", True), ("0.0.0.0", False), ("::", False),
     ("192.168.1.2", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_setting_is_a_comma_separated_list_or_a_toml_list(tmp_path: Path) -> None:
    environ = {"SLUICE_HOME": str(tmp_path)}
    assert load_settings(environ).server.allowed_hosts == ""
    (tmp_path / "config.toml").write_text('[server]\nallowed_hosts = ["a.example", "b:80"]\n')
    assert load_settings(environ).server.allowed_hosts == "a.example,b:80"
    environ["SLUICE_SERVER_ALLOWED_HOSTS"] = "c.example"
    assert load_settings(environ).server.allowed_hosts == "c.example"
