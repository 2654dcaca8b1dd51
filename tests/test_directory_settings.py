"""The Microsoft Graph settings: defaults, checks, and what the roster sync says is missing."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings

GROUP = "0b9a3e0c-52f4-4a1e-9d55-3c2b8f0e1a11"
PRODUCTION = {
    "PQF_ENVIRONMENT": "production", "MICROSOFT_APP_ID": "a", "MICROSOFT_APP_PASSWORD": "s",
    "MICROSOFT_APP_TENANT_ID": "t", "PQF_LINK_SECRET": "k" * 40,
    "PQF_PUBLIC_URL": "https://pqf.example",
}  # fmt: skip


def test_graph_defaults_to_microsoft_and_needs_nothing_to_start() -> None:
    settings = load_settings(env_file=None)
    assert settings.graph_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph_group_ids == ()
    assert settings.graph_missing() == [
        "PQF_GRAPH_GROUPS", "PQF_GRAPH_MAPPING_FILE", "MICROSOFT_APP_ID",
        "MICROSOFT_APP_PASSWORD", "MICROSOFT_APP_TENANT_ID",
    ]  # fmt: skip


def test_the_sync_names_what_production_lacks() -> None:
    settings = load_settings(env_file=None, **PRODUCTION)
    assert settings.graph_missing() == ["PQF_GRAPH_GROUPS", "PQF_GRAPH_MAPPING_FILE"]
    ready = load_settings(
        env_file=None, PQF_GRAPH_GROUPS=f"{GROUP.upper()}, {GROUP}",
        PQF_GRAPH_MAPPING_FILE="/etc/pqf-bot/graph-mapping.yaml", **PRODUCTION,
    )  # fmt: skip
    assert ready.graph_missing() == []
    assert ready.graph_group_ids == (GROUP,)


def test_a_static_token_stands_in_for_credentials_in_development_only() -> None:
    settings = load_settings(
        env_file=None, PQF_GRAPH_TOKEN="t0ken", PQF_GRAPH_GROUPS=GROUP,
        PQF_GRAPH_MAPPING_FILE="m.yaml", PQF_GRAPH_URL="http://127.0.0.1:8999/v1.0/",
    )  # fmt: skip
    assert settings.graph_missing() == []
    assert settings.graph_url == "http://127.0.0.1:8999/v1.0"
    assert "t0ken" not in repr(settings)
    with pytest.raises(
        SettingsError, match="PQF_GRAPH_TOKEN: a static Graph token is for development"
    ):
        load_settings(env_file=None, PQF_GRAPH_TOKEN="t0ken", **PRODUCTION)


def test_group_ids_and_the_address_are_checked() -> None:
    with pytest.raises(SettingsError, match="PQF_GRAPH_GROUPS: not group object ids"):
        load_settings(env_file=None, PQF_GRAPH_GROUPS="Adult Social Care")
    with pytest.raises(SettingsError, match="PQF_GRAPH_URL: must be an address"):
        load_settings(env_file=None, PQF_GRAPH_URL="graph.microsoft.com")


def test_the_sign_in_host_follows_the_graph_cloud() -> None:
    assert load_settings(env_file=None).graph_authority_host == "https://login.microsoftonline.com"
    for graph, host in (
        ("https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
        ("https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
        ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://login.chinacloudapi.cn"),
    ):
        assert load_settings(env_file=None, PQF_GRAPH_URL=graph).graph_authority_host == host
    chosen = load_settings(
        env_file=None, PQF_GRAPH_URL="https://graph.microsoft.us/v1.0",
        PQF_GRAPH_AUTHORITY="https://login.microsoftonline.us/",
    )  # fmt: skip
    assert chosen.graph_authority_host == "https://login.microsoftonline.us"
    with pytest.raises(SettingsError, match="PQF_GRAPH_AUTHORITY: must be the sign-in host alone"):
        load_settings(env_file=None, PQF_GRAPH_AUTHORITY="https://login.microsoftonline.com/t")


def test_an_unknown_graph_needs_its_sign_in_host_named_unless_a_token_stands_in() -> None:
    elsewhere = {"PQF_GRAPH_URL": "https://graph.example.test/v1.0", **PRODUCTION}
    unknown = load_settings(env_file=None, PQF_GRAPH_GROUPS=GROUP,
                            PQF_GRAPH_MAPPING_FILE="m.yaml", **elsewhere)  # fmt: skip
    assert [m.split(" ")[0] for m in unknown.graph_missing()] == ["PQF_GRAPH_AUTHORITY"]
    named = load_settings(env_file=None, PQF_GRAPH_GROUPS=GROUP, PQF_GRAPH_MAPPING_FILE="m.yaml",
                          PQF_GRAPH_AUTHORITY="https://login.example.test", **elsewhere)  # fmt: skip
    assert named.graph_missing() == []
    tokened = load_settings(env_file=None, PQF_GRAPH_URL="http://127.0.0.1:8999/v1.0",
                            PQF_GRAPH_TOKEN="t", PQF_GRAPH_GROUPS=GROUP,
                            PQF_GRAPH_MAPPING_FILE="m.yaml")  # fmt: skip
    assert tokened.graph_missing() == []


def test_development_is_told_a_token_may_stand_in() -> None:
    development = load_settings(env_file=None)
    missing = development.graph_missing()
    assert "PQF_GRAPH_TOKEN" in development.graph_missing_hint(missing)
    assert "development" in development.graph_missing_hint(missing)
    assert development.graph_missing_hint(["PQF_GRAPH_GROUPS"]) == ""
    production = load_settings(env_file=None, **PRODUCTION)
    assert production.graph_missing_hint(["MICROSOFT_APP_PASSWORD"]) == ""
