"""The Teams app package: a manifest valid against Microsoft's schema (checked offline by the
@microsoft/app-manifest npm package), the bot's id and domain filled in, personal scope only,
the commands listed, icons by Teams' rules, and clear refusals of bad settings."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from admin.package import PackageError, build_package
from tests.conftest import ROOT, skip_or_fail

APP_ID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
PUBLIC_URL = "https://pqf-bot.somerset.example"
DOMAIN = "pqf-bot.somerset.example"
VALIDATOR = ROOT / "tests" / "js" / "validate_manifest.js"
# Teams' documented limits for a bot command, stricter than the newer schemas' (128 / 4000).
MAX_TITLE, MAX_DESCRIPTION = 32, 128


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """Return a package built with a test app id and an https address."""
    return build_package(app_id=APP_ID, public_url=PUBLIC_URL, out=tmp_path / "pqf.zip")


def manifest_of(package: Path) -> dict[str, Any]:
    """Return the manifest inside a package."""
    with zipfile.ZipFile(package) as archive:
        manifest: dict[str, Any] = json.loads(archive.read("manifest.json"))
    return manifest


def validate(manifest: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Validate a manifest with the Node script; return its exit status and its report."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@microsoft" / "app-manifest").exists():
        skip_or_fail(
            "PQF_REQUIRE_NODE", "Node.js and `npm ci` are needed to validate the Teams manifest"
        )
    completed = subprocess.run(
        [node, str(VALIDATOR)], input=json.dumps(manifest), capture_output=True, text=True,
        cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode in (0, 1), completed.stderr or completed.stdout
    return completed.returncode, json.loads(completed.stdout)


def rgba_pixels(image: Image.Image) -> list[tuple[int, ...]]:
    """Return every pixel as (red, green, blue, alpha), in order."""
    data = image.convert("RGBA").tobytes()
    return [tuple(data[i : i + 4]) for i in range(0, len(data), 4)]


def test_the_package_holds_exactly_the_manifest_and_two_icons(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert archive.testzip() is None


def test_the_manifest_validates_against_the_official_schema(package: Path) -> None:
    manifest = manifest_of(package)
    status, report = validate(manifest)
    assert report["errors"] == []
    assert report["valid"] is True
    assert status == 0
    assert report["schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")


def test_the_validator_rejects_a_manifest_without_a_name(package: Path) -> None:
    broken = manifest_of(package)
    del broken["name"]
    broken["bots"][0]["scopes"] = ["personal", "everyone"]
    status, report = validate(broken)
    assert status == 1
    assert report["valid"] is False
    assert any("'name'" in error for error in report["errors"])
    assert any("/bots/0/scopes" in error for error in report["errors"])


def test_the_bot_id_and_domain_are_filled_in_everywhere(package: Path) -> None:
    manifest = manifest_of(package)
    assert manifest["id"] == APP_ID
    assert [bot["botId"] for bot in manifest["bots"]] == [APP_ID]
    assert manifest["validDomains"] == [DOMAIN]
    developer = manifest["developer"]
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[key].startswith(f"https://{DOMAIN}/")
    assert developer["privacyUrl"] == f"https://{DOMAIN}/privacy"
    text = json.dumps(manifest)
    assert "{{" not in text
    assert "}}" not in text
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])


def test_the_app_is_named_and_described_in_plain_words(package: Path) -> None:
    manifest = manifest_of(package)
    assert manifest["name"]["short"] == "PQF Audit Bot"
    assert len(manifest["name"]["full"]) <= 100
    assert len(manifest["description"]["short"]) <= 80
    assert "Somerset Council Adult Social Care" in manifest["description"]["full"]
    assert manifest["developer"]["name"].startswith("Somerset Council")
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", manifest["accentColor"])


def test_the_bot_is_personal_scope_only(package: Path) -> None:
    manifest = manifest_of(package)
    (bot,) = manifest["bots"]
    assert bot["scopes"] == ["personal"]
    assert [entry["scopes"] for entry in bot["commandLists"]] == [["personal"]]
    assert bot["supportsFiles"] is False
    assert bot["isNotificationOnly"] is False
    for other in ("staticTabs", "configurableTabs", "composeExtensions", "connectors"):
        assert other not in manifest


def test_the_commands_are_listed_with_descriptions(package: Path) -> None:
    (bot,) = manifest_of(package)["bots"]
    commands = {c["title"]: c["description"] for c in bot["commandLists"][0]["commands"]}
    assert {"help", "my audits", "resume", "report", "new audit", "moderation"} <= set(commands)
    assert len(commands) == len(bot["commandLists"][0]["commands"])
    for title, description in commands.items():
        assert 0 < len(title) <= MAX_TITLE
        assert 10 < len(description) <= MAX_DESCRIPTION, title


def test_the_colour_icon_is_192_pixels_and_opaque(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        icon = Image.open(io.BytesIO(archive.read("color.png")))
    assert icon.format == "PNG"
    assert icon.size == (192, 192)
    alpha = icon.convert("RGBA").getchannel("A")
    assert alpha.getextrema() == (255, 255)
    assert len(set(rgba_pixels(icon))) > 2  # a picture, not a flat square


def test_the_outline_icon_is_32_pixels_white_on_transparent(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        icon = Image.open(io.BytesIO(archive.read("outline.png")))
    assert icon.format == "PNG"
    assert icon.size == (32, 32)
    pixels = rgba_pixels(icon)
    strays = [p for p in pixels if p[3] != 0 and p != (255, 255, 255, 255)]
    assert strays == []
    transparent = sum(1 for p in pixels if p[3] == 0)
    assert 0 < transparent < len(pixels)


def test_the_committed_icons_are_what_make_icons_draws(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manifest" / "make_icons.py"), str(tmp_path)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    for name in ("color.png", "outline.png"):
        drawn = Image.open(tmp_path / name)
        committed = Image.open(ROOT / "manifest" / name)
        assert drawn.size == committed.size
        assert rgba_pixels(drawn) == rgba_pixels(committed), name


def test_the_same_settings_build_the_same_bytes(tmp_path: Path) -> None:
    first = build_package(app_id=APP_ID, public_url=PUBLIC_URL, out=tmp_path / "a.zip")
    second = build_package(app_id=APP_ID, public_url=PUBLIC_URL, out=tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    ("app_id", "problem"),
    [
        ("", "is not set"),
        ("   ", "is not set"),
        ("pqf-audit-bot", "is not a Microsoft App ID"),
        ("6f1c2b3a4d5e4f608a7b9c0d1e2f3a4b", "is not a Microsoft App ID"),
        ("{{MICROSOFT_APP_ID}}", "is not a Microsoft App ID"),
    ],
)
def test_a_missing_or_malformed_app_id_is_refused(
    tmp_path: Path, app_id: str, problem: str
) -> None:
    out = tmp_path / "pqf.zip"
    with pytest.raises(PackageError, match=f"MICROSOFT_APP_ID.*{problem}"):
        build_package(app_id=app_id, public_url=PUBLIC_URL, out=out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://pqf-bot.somerset.example",
        "pqf-bot.somerset.example",
        "ftp://pqf-bot.somerset.example",
        "https://",
        "https://admin:secret@pqf-bot.somerset.example",
        "https://pqf-bot.somerset.example/?next=1",
        "https://pqf-bot.somerset.example:port",
        "http://localhost:3978",
    ],
)
def test_a_public_url_that_is_not_https_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(PackageError, match="PQF_PUBLIC_URL") as caught:
        build_package(app_id=APP_ID, public_url=url, out=tmp_path / "pqf.zip")
    assert "secret" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_http_localhost_is_accepted_only_when_allowed_for_a_local_trial(tmp_path: Path) -> None:
    package = build_package(
        app_id=APP_ID, public_url="http://localhost:3978", out=tmp_path / "local.zip",
        allow_local_http=True,
    )  # fmt: skip
    manifest = manifest_of(package)
    assert manifest["validDomains"] == ["localhost"]
    assert manifest["developer"]["privacyUrl"] == "http://localhost:3978/privacy"
    with pytest.raises(PackageError, match=r"PQF_PUBLIC_URL.*https://"):
        build_package(
            app_id=APP_ID, public_url="http://pqf-bot.somerset.example", out=tmp_path / "x.zip",
            allow_local_http=True,
        )  # fmt: skip


def test_a_public_url_with_a_path_keeps_it_in_links(tmp_path: Path) -> None:
    package = build_package(
        app_id=APP_ID, public_url="https://apps.somerset.example/pqf/", out=tmp_path / "p.zip"
    )
    manifest = manifest_of(package)
    assert manifest["validDomains"] == ["apps.somerset.example"]
    assert manifest["developer"]["termsOfUseUrl"] == "https://apps.somerset.example/pqf/terms"


def test_the_app_version_is_given_or_the_bots_own(tmp_path: Path) -> None:
    given = build_package(
        app_id=APP_ID, public_url=PUBLIC_URL, out=tmp_path / "v.zip", version="2.3.4"
    )
    assert manifest_of(given)["version"] == "2.3.4"
    with pytest.raises(PackageError, match="three whole numbers"):
        build_package(app_id=APP_ID, public_url=PUBLIC_URL, out=tmp_path / "w.zip", version="1.0")


def test_a_wrongly_sized_icon_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "template"
    shutil.copytree(ROOT / "manifest", template, ignore=shutil.ignore_patterns("*.py"))
    Image.new("RGBA", (48, 48), (0, 0, 0, 0)).save(template / "outline.png")
    with pytest.raises(PackageError, match=r"outline\.png is 48×48 pixels; Teams needs 32×32"):
        build_package(
            app_id=APP_ID, public_url=PUBLIC_URL, out=tmp_path / "p.zip", template_dir=template
        )


def test_make_package_builds_a_valid_package_from_the_settings(tmp_path: Path) -> None:
    # `make package` runs exactly this command (checked here), with the settings from the
    # environment; run it as a user would and validate what it writes.
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\npackage:", 1)[1]
    assert "pqf-bot package --out build/pqf-audit-bot.zip" in recipe.split("\n\n", 1)[0]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MICROSOFT_APP_ID": APP_ID,
           "PQF_PUBLIC_URL": PUBLIC_URL}  # fmt: skip
    out = tmp_path / "build" / "pqf-audit-bot.zip"
    made = subprocess.run(
        [sys.executable, "-m", "admin", "package", "--out", str(out)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "Upload it in the Teams admin centre" in made.stdout
    manifest = manifest_of(out)
    assert manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == [DOMAIN]
    status, report = validate(manifest)
    assert status == 0, report["errors"]

    refused = subprocess.run(
        [sys.executable, "-m", "admin", "package", "--out", str(tmp_path / "other.zip")], cwd=ROOT,
        env={**env, "PQF_PUBLIC_URL": "http://pqf-bot.somerset.example"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "PQF_PUBLIC_URL" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "other.zip").exists()
