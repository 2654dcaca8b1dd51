"""Build the Teams app package an administrator uploads to Teams (`package`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from admin.common import EXIT_BAD_SETUP, EXIT_OK, Commands, complain
from bot.settings import Settings


def add_commands(commands: Commands) -> None:
    """Add `package`."""
    package = commands.add_parser(
        "package", help="build the Teams app package (zip) to upload to Teams",
        description="Build the Teams app package from manifest/: the manifest with the bot's "
        "MICROSOFT_APP_ID and the host of PQF_PUBLIC_URL filled in, and the two icons. Upload "
        "it in the Teams admin centre (Manage apps > Upload).",
    )  # fmt: skip
    package.add_argument("--out", type=Path, required=True, metavar="FILE.zip")
    package.add_argument("--version", metavar="X.Y.Z", help="the app version (default: the bot's)")
    package.add_argument(
        "--allow-local-http", action="store_true",
        help="accept an http://localhost public URL (for trying the package locally only)",
    )  # fmt: skip
    package.set_defaults(handler=_package)


def _package(settings: Settings, args: argparse.Namespace) -> int:
    from admin.package import PackageError, build_package

    try:
        out = build_package(
            app_id=settings.app_id, public_url=settings.public_url, out=args.out,
            version=args.version, allow_local_http=args.allow_local_http,
        )  # fmt: skip
    except PackageError as error:
        complain(str(error))
        return EXIT_BAD_SETUP
    print(f"Wrote the Teams app package {out} for bot {settings.app_id}. Upload it in the Teams "
          "admin centre (Teams apps > Manage apps > Upload new app).")  # fmt: skip
    return EXIT_OK
