"""Settings: validated once, with messages that name the variable at fault."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings


def test_defaults_are_for_local_development() -> None:
    settings = load_settings(env_file=None)
    assert settings.is_development
    assert settings.database_url.startswith("sqlite:///")
    assert settings.timezone == "Europe/London"
    assert settings.port == 3978


def test_production_refuses_to_start_without_credentials() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, PQF_ENVIRONMENT="production")
    message = str(caught.value)
    for variable in (
        "MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "MICROSOFT_APP_TENANT_ID",
        "PQF_LINK_SECRET", "PQF_PUBLIC_URL",
    ):  # fmt: skip
        assert variable in message


def test_production_with_single_tenant_credentials() -> None:
    settings = load_settings(
        env_file=None, PQF_ENVIRONMENT="production", MICROSOFT_APP_ID="a",
        MICROSOFT_APP_PASSWORD="s3cret-value", MICROSOFT_APP_TENANT_ID="c",
        PQF_LINK_SECRET="k" * 40, PQF_PUBLIC_URL="https://pqf.example",
    )  # fmt: skip
    assert "k" * 40 not in repr(settings)
    assert not settings.is_development
    assert "s3cret-value" not in repr(settings)  # the password is never shown


def test_managed_identity_needs_no_password() -> None:
    settings = load_settings(
        env_file=None, PQF_ENVIRONMENT="production", MICROSOFT_APP_ID="a",
        MICROSOFT_APP_TYPE="UserAssignedMSI", MICROSOFT_APP_TENANT_ID="c",
        PQF_LINK_SECRET="k" * 40, PQF_PUBLIC_URL="https://pqf.example",
    )  # fmt: skip
    assert settings.app_type == "UserAssignedMSI"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PQF_TIMEZONE", "Mars/Olympus", "PQF_TIMEZONE: unknown time zone"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: must start with sqlite:/// or postgresql://"),
        ("PQF_ENVIRONMENT", "staging", "PQF_ENVIRONMENT"),
        ("PQF_PORT", "eighty", "PQF_PORT"),
        ("MICROSOFT_APP_TYPE", "Anything", "MICROSOFT_APP_TYPE"),
        ("PQF_LOG_LEVEL", "LOUD", "PQF_LOG_LEVEL"),
        ("PQF_LINK_SECRET", "short", "PQF_LINK_SECRET: must be at least 32"),
        ("PQF_JOB_TIME", "half past eight", "PQF_JOB_TIME"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings(env_file=None)


def test_environment_and_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PQF_SUPPORT_CONTACT=the Practice Quality team on 01234 567890\nPQF_PORT=4000\n"
    )
    monkeypatch.setenv("PQF_PORT", "5000")
    settings = load_settings(env_file=str(env_file))
    assert settings.support_contact == "the Practice Quality team on 01234 567890"
    assert settings.port == 5000  # the environment wins over the file


PRODUCTION = {
    "PQF_ENVIRONMENT": "production", "MICROSOFT_APP_ID": "a", "MICROSOFT_APP_PASSWORD": "p",
    "MICROSOFT_APP_TENANT_ID": "c", "PQF_LINK_SECRET": "k" * 40,
    "PQF_PUBLIC_URL": "https://pqf.example",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"PQF_PUBLIC_URL": "http://pqf.example"}, "PQF_PUBLIC_URL: production needs an https://"),
        ({"PQF_PUBLIC_URL": "HTTP://pqf.example/bot"}, "production needs an https://"),
        ({"PQF_PUBLIC_URL": "pqf.example"}, "PQF_PUBLIC_URL: must be an address like https://"),
        ({"PQF_PUBLIC_URL": "https://pqf.example/?x=1"}, "PQF_PUBLIC_URL: must be an address"),
        ({"PQF_PUBLIC_URL": "javascript:alert(1)"}, "PQF_PUBLIC_URL: must be an address"),
        (
            {"MICROSOFT_APP_TYPE": "MultiTenant", "MICROSOFT_APP_TENANT_ID": ""},
            "MultiTenant would serve any organisation's users: set MICROSOFT_APP_TENANT_ID or "
            "PQF_ALLOWED_TENANTS",
        ),
        ({"PQF_METRICS_TOKEN": "short"}, "PQF_METRICS_TOKEN: must be at least 32"),
        ({"PQF_METRICS_TOKEN": "a b" * 20}, "PQF_METRICS_TOKEN: must be at least 32"),
        ({"PQF_METRICS_PORT": "3978"}, "PQF_METRICS_PORT: must differ from PQF_PORT"),
        ({"PQF_METRICS_PORT": "70000"}, "PQF_METRICS_PORT"),
    ],
)
def test_production_refuses_unsafe_settings(changes: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(expected)):
        load_settings(env_file=None, **{**PRODUCTION, **changes})


def test_multi_tenant_needs_its_tenants_or_an_explicit_choice() -> None:
    multi = {**PRODUCTION, "MICROSOFT_APP_TYPE": "MultiTenant", "MICROSOFT_APP_TENANT_ID": ""}
    listed = load_settings(env_file=None, **multi, PQF_ALLOWED_TENANTS="T1, t2")
    assert listed.tenants == {"t1", "t2"}
    chosen = load_settings(env_file=None, **multi, PQF_ALLOW_ANY_TENANT="true")
    assert chosen.tenants == frozenset()
    # Development keeps http:// on this machine, and metrics beside the bot.
    development = load_settings(env_file=None, PQF_PUBLIC_URL="http://localhost:3978")
    assert development.metrics_on_main_listener
    assert not load_settings(env_file=None, **PRODUCTION).metrics_on_main_listener
    assert load_settings(
        env_file=None, **PRODUCTION, PQF_METRICS_TOKEN="t" * 32
    ).metrics_on_main_listener
    assert not load_settings(env_file=None, PQF_METRICS_PORT="9100").metrics_on_main_listener
