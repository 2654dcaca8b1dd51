"""The bot's settings, read once from the environment (and an optional .env file) and validated."""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Sequence
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from directory.graph import TokenSource
    from storage.directory_sync import HeldRetention


class SettingsError(Exception):
    """The settings cannot be used; the message names each variable at fault."""


class Settings(BaseSettings):
    """Everything the bot reads from its environment. docs/configuration.md describes each."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    environment: Literal["development", "production"] = Field(
        default="development", validation_alias="PQF_ENVIRONMENT"
    )
    database_url: str = Field(
        default="sqlite:///data/pqf-bot.db", validation_alias="DATABASE_URL", min_length=1
    )
    app_id: str = Field(
        default="", validation_alias=AliasChoices("MICROSOFT_APP_ID", "MicrosoftAppId")
    )
    app_password: str = Field(
        default="",
        validation_alias=AliasChoices("MICROSOFT_APP_PASSWORD", "MicrosoftAppPassword"),
        repr=False,
    )
    app_type: Literal["SingleTenant", "MultiTenant", "UserAssignedMSI"] = Field(
        default="SingleTenant",
        validation_alias=AliasChoices("MICROSOFT_APP_TYPE", "MicrosoftAppType"),
    )
    app_tenant_id: str = Field(
        default="",
        validation_alias=AliasChoices("MICROSOFT_APP_TENANT_ID", "MicrosoftAppTenantId"),
    )
    timezone: str = Field(default="Europe/London", validation_alias="PQF_TIMEZONE")
    host: str = Field(default="127.0.0.1", validation_alias="PQF_HOST")
    port: int = Field(default=3978, ge=1, le=65535, validation_alias="PQF_PORT")
    framework_file: Path | None = Field(default=None, validation_alias="PQF_FRAMEWORK_FILE")
    support_contact: str = Field(
        default="the Practice Quality team",
        validation_alias="PQF_SUPPORT_CONTACT",
        min_length=3,
        max_length=200,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="PQF_LOG_LEVEL"
    )
    log_format: Literal["text", "json", ""] = Field(default="", validation_alias="PQF_LOG_FORMAT")
    retention_months: int = Field(default=24, ge=1, le=240, validation_alias="PQF_RETENTION_MONTHS")
    # Processes that make reports, so a long one never holds up the bot's turns (0: in the
    # bot's own process, for tests).
    report_workers: int = Field(default=2, ge=0, le=16, validation_alias="PQF_REPORT_WORKERS")
    allowed_tenants: str = Field(default="", validation_alias="PQF_ALLOWED_TENANTS")
    allow_any_tenant: bool = Field(default=False, validation_alias="PQF_ALLOW_ANY_TENANT")
    metrics_token: str = Field(default="", validation_alias="PQF_METRICS_TOKEN", repr=False)
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, validation_alias="PQF_METRICS_PORT"
    )
    user_rate_limit: str = Field(default="20/10", validation_alias="PQF_USER_RATE_LIMIT")
    run_scheduler: bool = Field(default=True, validation_alias="PQF_RUN_SCHEDULER")
    job_time: time = Field(default=time(8, 30), validation_alias="PQF_JOB_TIME")
    run_sender: bool = Field(default=True, validation_alias="PQF_RUN_SENDER")
    send_rate: float = Field(default=48.0, gt=0, le=50, validation_alias="PQF_SEND_RATE")
    public_url: str = Field(default="", validation_alias="PQF_PUBLIC_URL", max_length=300)
    link_secret: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        validation_alias="PQF_LINK_SECRET",
        repr=False,
    )
    link_minutes: int = Field(default=15, ge=1, le=24 * 60, validation_alias="PQF_LINK_MINUTES")
    instance_name: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        validation_alias="PQF_INSTANCE_NAME",
        max_length=64,
    )

    # Microsoft Graph, for `pqf-bot roster sync` (docs/deploy.md, "Roster from Microsoft Graph").
    graph_url: str = Field(
        default="https://graph.microsoft.com/v1.0", validation_alias="PQF_GRAPH_URL", max_length=300
    )
    graph_groups: str = Field(default="", validation_alias="PQF_GRAPH_GROUPS")
    graph_mapping_file: Path | None = Field(default=None, validation_alias="PQF_GRAPH_MAPPING_FILE")
    graph_token: str = Field(default="", validation_alias="PQF_GRAPH_TOKEN", repr=False)
    # Where the app signs in for Graph; empty: the sign-in host of PQF_GRAPH_URL's cloud.
    graph_authority: str = Field(default="", validation_alias="PQF_GRAPH_AUTHORITY", max_length=300)
    # How long the records of people a sync could not place stay without a sync confirming
    # them (the retention purge erases them then, and all of them once Graph is not set up).
    graph_held_days: int = Field(default=30, ge=1, le=365, validation_alias="PQF_GRAPH_HELD_DAYS")
    # For `pqf-bot reach --install` (docs/deploy.md, "Installing the app for everyone").
    teams_catalog_app_id: str = Field(
        default="", validation_alias="PQF_TEAMS_CATALOG_APP_ID", max_length=64
    )
    teams_service_url: str = Field(
        default="https://smba.trafficmanager.net/teams/",
        validation_alias="PQF_TEAMS_SERVICE_URL",
        max_length=300,
    )
    graph_install_rate: float = Field(
        default=4.0, gt=0, le=50, validation_alias="PQF_GRAPH_INSTALL_RATE"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @model_validator(mode="after")
    def _production_needs_credentials(self) -> Settings:
        if self.environment != "production":
            return self
        missing = []
        if not self.app_id:
            missing.append("MICROSOFT_APP_ID")
        if not self.app_password and self.app_type != "UserAssignedMSI":
            missing.append("MICROSOFT_APP_PASSWORD")
        if not self.app_tenant_id and self.app_type != "MultiTenant":
            missing.append("MICROSOFT_APP_TENANT_ID")
        if "link_secret" not in self.model_fields_set:
            missing.append("PQF_LINK_SECRET")
        if not self.public_url:
            missing.append("PQF_PUBLIC_URL")
        if missing:
            raise ValueError(
                "production needs the bot's Azure credentials; missing: " + ", ".join(missing)
            )
        if not self.public_url.lower().startswith("https://"):
            raise ValueError(
                "PQF_PUBLIC_URL: production needs an https:// address (report links carry "
                "personal data and their signed token)"
            )
        if self.app_type == "MultiTenant" and not self.tenants and not self.allow_any_tenant:
            raise ValueError(
                "MICROSOFT_APP_TYPE=MultiTenant would serve any organisation's users: set "
                "MICROSOFT_APP_TENANT_ID or PQF_ALLOWED_TENANTS to the tenants to serve (or "
                "PQF_ALLOW_ANY_TENANT=true if that is really meant)"
            )
        return self

    @field_validator("graph_url")
    @classmethod
    def _graph_address(cls, value: str) -> str:
        if not re.match(r"^https?://[a-z0-9.-]+(:\d{1,5})?(/[^\s?#]*)?$", value, re.I):
            raise ValueError("must be an address like https://graph.microsoft.com/v1.0")
        return value.rstrip("/")

    @field_validator("graph_authority")
    @classmethod
    def _authority_address(cls, value: str) -> str:
        if value and not re.match(r"^https://[a-z0-9.-]+(:\d{1,5})?/?$", value, re.I):
            raise ValueError(
                "must be the sign-in host alone, like https://login.microsoftonline.us "
                "(no tenant: that is MICROSOFT_APP_TENANT_ID)"
            )
        return value.rstrip("/")

    @field_validator("graph_groups")
    @classmethod
    def _group_ids(cls, value: str) -> str:
        bad = [g for g in _listed(value) if not _GUID.match(g)]
        if bad:
            raise ValueError(f"not group object ids (GUIDs): {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _static_graph_token_only_in_development(self) -> Settings:
        if self.graph_token and not self.is_development:
            raise ValueError(
                "PQF_GRAPH_TOKEN: a static Graph token is for development only; production "
                "signs in with MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD"
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        if value and not re.match(r"^https?://[a-z0-9.-]+(:\d{1,5})?(/[^\s?#]*)?$", value, re.I):
            raise ValueError("must be an address like https://pqf-bot.example.gov.uk")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough_token(cls, value: str) -> str:
        if value and (len(value) < 32 or not value.isprintable() or " " in value):
            raise ValueError(
                "must be at least 32 characters without spaces (e.g. from `openssl rand -hex 32`)"
            )
        return value

    @model_validator(mode="after")
    def _metrics_port_of_its_own(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("PQF_METRICS_PORT: must differ from PQF_PORT")
        return self

    @field_validator("link_secret")
    @classmethod
    def _long_enough_secret(cls, value: str) -> str:
        if len(value) < 32:
            raise ValueError("must be at least 32 characters (e.g. from `openssl rand -base64 32`)")
        return value

    @field_validator("user_rate_limit")
    @classmethod
    def _rate_limit_shape(cls, value: str) -> str:
        count, _, seconds = value.partition("/")
        if not (count.isdigit() and seconds.isdigit() and int(count) > 0 and int(seconds) > 0):
            raise ValueError("must be MESSAGES/SECONDS, e.g. 20/10")
        return value

    @property
    def json_logs(self) -> bool:
        """Return whether to log JSON lines (by default in production) or readable text."""
        return self.log_format == "json" or (not self.log_format and not self.is_development)

    @property
    def user_rate(self) -> tuple[int, float]:
        """Return (messages, seconds) one person may send before being asked to slow down."""
        count, _, seconds = self.user_rate_limit.partition("/")
        return int(count), float(seconds)

    @property
    def tenants(self) -> frozenset[str]:
        """Return the Microsoft Entra tenants whose users may use the bot (empty: any)."""
        listed = {t.strip().lower() for t in self.allowed_tenants.split(",") if t.strip()}
        if self.app_tenant_id:
            listed.add(self.app_tenant_id.lower())
        return frozenset(listed)

    @property
    def graph_group_ids(self) -> tuple[str, ...]:
        """Return the Entra security groups whose members are the roster, lower-cased."""
        return tuple(dict.fromkeys(g.lower() for g in _listed(self.graph_groups)))

    def graph_missing(self) -> list[str]:
        """Return the settings `roster sync` needs that are not set (empty: ready)."""
        missing = []
        if not self.graph_groups:
            missing.append("PQF_GRAPH_GROUPS")
        if self.graph_mapping_file is None:
            missing.append("PQF_GRAPH_MAPPING_FILE")
        if not self.graph_token:
            if not self.app_id:
                missing.append("MICROSOFT_APP_ID")
            if not self.app_password:
                missing.append("MICROSOFT_APP_PASSWORD")
            if not self.app_tenant_id:
                missing.append("MICROSOFT_APP_TENANT_ID")
            if not self.graph_authority_host:
                missing.append(
                    "PQF_GRAPH_AUTHORITY (PQF_GRAPH_URL is not a Microsoft Graph cloud the "
                    "bot knows, so say where the app signs in)"
                )
        return missing

    @property
    def held_retention(self) -> HeldRetention:
        """Return how long a roster sync's held records stay: none unless Graph is set up."""
        from storage.directory_sync import HeldRetention

        return HeldRetention(days=self.graph_held_days, synced=not self.graph_missing())

    def graph_missing_hint(self, missing: Sequence[str]) -> str:
        """Return what to add to a message naming missing Graph settings (development's way)."""
        if self.is_development and any(m.startswith("MICROSOFT_APP_") for m in missing):
            return (
                "; in development, PQF_GRAPH_TOKEN (a bearer token for PQF_GRAPH_URL, say a "
                "test Graph server's) may stand in for the MICROSOFT_APP_* credentials"
            )
        return ""

    @property
    def graph_authority_host(self) -> str:
        """Return where the app signs in for Graph: PQF_GRAPH_AUTHORITY, else PQF_GRAPH_URL's."""
        from directory.graph import authority_host_for

        return self.graph_authority or authority_host_for(self.graph_url) or ""

    def graph_tokens(self) -> TokenSource:
        """Return how Graph calls are signed: the development token, else the app's sign-in."""
        from directory.graph import token_source

        return token_source(
            static_token=self.graph_token,
            tenant_id=self.app_tenant_id,
            client_id=self.app_id,
            client_secret=self.app_password,
            graph_url=self.graph_url,
            authority_host=self.graph_authority_host,
        )

    def install_missing(self) -> list[str]:
        """Return the settings `reach --install` needs that are not set (empty: ready)."""
        missing = [m for m in self.graph_missing() if m.startswith("MICROSOFT_")]
        if not self.teams_catalog_app_id:
            missing.append("PQF_TEAMS_CATALOG_APP_ID")
        return missing

    @property
    def metrics_on_main_listener(self) -> bool:
        """Return whether /metrics is served beside /api/messages (see `metrics_port`)."""
        if self.metrics_port is not None:
            return False
        # In production the main listener is public: metrics there only behind a token.
        return self.is_development or bool(self.metrics_token)

    @property
    def links_base(self) -> str:
        """Return the address report links start with (this machine's, in development)."""
        return self.public_url.rstrip("/") or f"http://localhost:{self.port}"

    @property
    def is_development(self) -> bool:
        """Return whether unauthenticated local use (the Agents Playground) is allowed."""
        return self.environment == "development"

    @property
    def zone(self) -> ZoneInfo:
        """Return the council's time zone."""
        return ZoneInfo(self.timezone)


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(*, env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Read the settings; raise SettingsError with one line per problem."""
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as error:
        lines = []
        for detail in error.errors():
            names = [str(part) for part in detail["loc"]]
            variable = _VARIABLES.get(names[0], names[0]) if names else ""
            message = detail["msg"].removeprefix("Value error, ")
            lines.append(f"{variable}: {message}" if variable else message)
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from error


_VARIABLES = {
    "PQF_ENVIRONMENT": "PQF_ENVIRONMENT",
    "environment": "PQF_ENVIRONMENT",
    "database_url": "DATABASE_URL",
    "timezone": "PQF_TIMEZONE",
    "port": "PQF_PORT",
    "log_level": "PQF_LOG_LEVEL",
    "support_contact": "PQF_SUPPORT_CONTACT",
    "job_time": "PQF_JOB_TIME",
    "run_scheduler": "PQF_RUN_SCHEDULER",
    "run_sender": "PQF_RUN_SENDER",
    "send_rate": "PQF_SEND_RATE",
    "link_secret": "PQF_LINK_SECRET",
    "link_minutes": "PQF_LINK_MINUTES",
    "log_format": "PQF_LOG_FORMAT",
    "retention_months": "PQF_RETENTION_MONTHS",
    "report_workers": "PQF_REPORT_WORKERS",
    "allowed_tenants": "PQF_ALLOWED_TENANTS",
    "user_rate_limit": "PQF_USER_RATE_LIMIT",
    "public_url": "PQF_PUBLIC_URL",
    "allow_any_tenant": "PQF_ALLOW_ANY_TENANT",
    "metrics_token": "PQF_METRICS_TOKEN",
    "metrics_port": "PQF_METRICS_PORT",
    "graph_url": "PQF_GRAPH_URL",
    "graph_groups": "PQF_GRAPH_GROUPS",
    "graph_mapping_file": "PQF_GRAPH_MAPPING_FILE",
    "graph_token": "PQF_GRAPH_TOKEN",
    "graph_authority": "PQF_GRAPH_AUTHORITY",
    "graph_held_days": "PQF_GRAPH_HELD_DAYS",
    "teams_catalog_app_id": "PQF_TEAMS_CATALOG_APP_ID",
    "teams_service_url": "PQF_TEAMS_SERVICE_URL",
    "graph_install_rate": "PQF_GRAPH_INSTALL_RATE",
}
