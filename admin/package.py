"""Build the Teams app package: the manifest template filled in, zipped with its two icons."""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The template and icons live beside the code in a source checkout (see manifest/).
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "manifest"
MANIFEST = "manifest.json"
ICONS = {"color.png": (192, 192), "outline.png": (32, 32)}
GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# The manifest schema's own semver pattern: three numbers, no pre-release suffix.
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
PLACEHOLDER = re.compile(r"\{\{[A-Z_]+\}\}")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
# A fixed time for every zip entry, so the same inputs give the same bytes.
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PackageError(Exception):
    """The Teams app package cannot be built; the message names the setting at fault."""


def build_package(
    *,
    app_id: str,
    public_url: str,
    out: Path,
    version: str | None = None,
    allow_local_http: bool = False,
    template_dir: Path | None = None,
) -> Path:
    """Write the Teams app zip (manifest.json, color.png, outline.png) to `out`; return it."""
    app_id = _checked_app_id(app_id)
    base_url, domain = _checked_public_url(public_url, allow_local_http=allow_local_http)
    app_version = _checked_version(version if version is not None else _bot_version())
    folder = template_dir or _template_dir()

    template = _read_template(folder / MANIFEST)
    manifest = _fill(
        template,
        {
            "{{MICROSOFT_APP_ID}}": app_id,
            "{{PUBLIC_URL}}": base_url,
            "{{PUBLIC_DOMAIN}}": domain,
            "{{APP_VERSION}}": app_version,
        },
    )
    leftover = PLACEHOLDER.findall(json.dumps(manifest))
    if leftover:
        raise PackageError(f"{folder / MANIFEST}: no value for {', '.join(sorted(set(leftover)))}")
    icons = {name: _read_icon(folder / name, size) for name, size in ICONS.items()}

    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a failed build never leaves half a zip behind.
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
            _add(archive, MANIFEST, text.encode("utf-8"))
            for name, data in icons.items():
                _add(archive, name, data)
        # mkstemp makes the file private; the package holds nothing secret.
        Path(temporary).chmod(0o644)
        Path(temporary).replace(out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out


def _checked_app_id(app_id: str) -> str:
    app_id = app_id.strip()
    if not app_id:
        raise PackageError(
            "MICROSOFT_APP_ID is not set: the Teams app package needs the Azure Bot's "
            "Microsoft App ID"
        )
    if not GUID.match(app_id):
        raise PackageError(
            f"MICROSOFT_APP_ID {app_id!r} is not a Microsoft App ID: expected a GUID like "
            "00000000-0000-0000-0000-000000000000 (the Azure Bot's Configuration page shows it)"
        )
    return app_id.lower()


def _checked_public_url(public_url: str, *, allow_local_http: bool) -> tuple[str, str]:
    """Return the public URL without a trailing slash, and its host name."""
    text = public_url.strip()
    if not text:
        raise PackageError(
            "PQF_PUBLIC_URL is not set: the Teams app package needs the HTTPS address Teams "
            "users reach the bot at, e.g. https://pqf-bot.example.gov.uk"
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # reading the port is what rejects "host:abc"
    except ValueError as error:
        raise PackageError(f"PQF_PUBLIC_URL {text!r} is not a valid address: {error}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise PackageError(
            f"PQF_PUBLIC_URL {text!r} is not a web address: expected https://host[/path]"
        )
    if parts.username is not None or parts.password is not None:
        raise PackageError(f"PQF_PUBLIC_URL must not carry a user name or password: {host}")
    if parts.query or parts.fragment:
        raise PackageError(
            f"PQF_PUBLIC_URL {text!r} must be a plain address, without ?query or #fragment"
        )
    if parts.scheme == "http" and not (allow_local_http and host in LOCAL_HOSTS):
        raise PackageError(
            f"PQF_PUBLIC_URL {text!r} must start with https:// (Teams only opens secure "
            "links; plain http:// is accepted only for localhost in local trials)"
        )
    return text.rstrip("/"), host.lower()


def _checked_version(version: str) -> str:
    if not SEMVER.match(version):
        raise PackageError(
            f"app version {version!r} must be three whole numbers like 1.4.0 (Teams needs "
            "a higher one for each update it installs)"
        )
    return version


def _bot_version() -> str:
    """Return the installed bot's version (pyproject.toml's), the app's version by default."""
    try:
        return metadata.version("pqf-audit-bot")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def _template_dir() -> Path:
    # A regular (not editable) install leaves manifest/ behind: look in the working folder too.
    for folder in (TEMPLATE_DIR, Path.cwd() / "manifest"):
        if (folder / MANIFEST).is_file():
            return folder
    raise PackageError(
        f"the Teams app template is missing: no {MANIFEST} in {TEMPLATE_DIR} or "
        f"{Path.cwd() / 'manifest'} (build the package from a copy of the bot's source)"
    )


def _read_template(path: Path) -> dict[str, Any]:
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PackageError(f"cannot read the Teams app template {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise PackageError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(template, dict):
        raise PackageError(f"{path} must hold a JSON object")
    return template


def _fill(value: Any, values: dict[str, str]) -> Any:
    """Return the template with each placeholder replaced inside its JSON strings."""
    # Working on parsed values (not the file's text) keeps every value correctly escaped.
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, str):
        for placeholder, replacement in values.items():
            value = value.replace(placeholder, replacement)
    return value


def _read_icon(path: Path, size: tuple[int, int]) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PackageError(f"cannot read the icon {path}: {error}") from None
    # A PNG's first chunk (IHDR) holds its width and height: enough to check without Pillow.
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise PackageError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != size:
        raise PackageError(
            f"{path} is {width}×{height} pixels; Teams needs {size[0]}×{size[1]} "
            "(run manifest/make_icons.py)"
        )
    return data


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    archive.writestr(entry, data)
