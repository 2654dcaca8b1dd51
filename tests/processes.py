"""Start the real bot (and the Agents Playground) as separate processes for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT


def free_port() -> int:
    """Return a TCP port nobody is listening on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until the URL answers (any HTTP status), or fail with the process's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a local test URL
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class BotProcess:
    """`pqf-bot serve` in a child process, logging to a file."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.env = env or {}
        self.database_url = database_url
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BotProcess:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "PQF_ENVIRONMENT": "development",
            "PQF_PORT": str(self.port),
            "PQF_HOST": "127.0.0.1",
            "MICROSOFT_APP_ID": "",
            # The tests run the monthly jobs themselves, for the days they choose.
            "PQF_RUN_SCHEDULER": "false",
            # A browser driven by a test answers cards faster than any person could.
            "PQF_USER_RATE_LIMIT": "1000/1",
            **self.env,
        }
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(
                [sys.executable, "-m", "admin", "serve"], cwd=self.log_path.parent, env=env,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(f"{self.url}/healthz", 30, self.process)
        return self

    def kill(self) -> None:
        """Stop the process at once, as a crash or a power cut would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def playground_command() -> list[str] | None:
    """Return the command that runs the Agents Playground installed by `npm ci`, if it is."""
    cli = ROOT / "node_modules" / "@microsoft" / "m365agentsplayground" / "cli.js"
    node = shutil.which("node")
    return [node, str(cli)] if node and cli.exists() else None


class PlaygroundProcess:
    """The Microsoft 365 Agents Playground (a local Teams), pointed at a bot."""

    def __init__(self, bot_url: str, config_path: Path, log_path: Path) -> None:
        self.port = free_port()
        self.bot_url = bot_url
        self.config_path = config_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PlaygroundProcess:
        command = playground_command()
        assert command is not None
        env = {
            **os.environ,
            "TEAMSAPPTESTER_BROWSER": "none",
            "M365_AGENTS_PLAYGROUND_CONFIG_PATH": str(self.config_path),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "-e", f"{self.bot_url}/api/messages", "-c", "msteams", "-p",
                 str(self.port), "--disable-telemetry"],
                cwd=self.config_path.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(f"{self.url}/_internal/v1/config", 60, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
