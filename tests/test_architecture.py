"""Hold the house rules: imports run down, SQL stays in storage/, no module grows too big."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Rooms from the top down. A module may import its own room or any room further down
# the list, never one above it. Rooms on the same line are side by side and do not
# import each other.
LAYERS: list[set[str]] = [
    {"admin"},
    {"bot"},
    {"scheduler"},
    {"dialogs"},
    {"messages"},
    {"delivery", "directory"},
    {"cards", "reports"},
    {"storage"},
    {"practice"},
]
ROOMS = {room: depth for depth, rooms in enumerate(LAYERS) for room in rooms}
BOTBUILDER_ROOMS = {"bot", "dialogs", "delivery"}
BOTBUILDER_FILES = {"storage/bot_state.py"}
LARGEST_MODULE = 650
# Names from sqlalchemy/sqlmodel that build no statement: types for annotations, errors to
# catch, and a URL parser. Anything else imported from them outside storage/ is SQL.
NOT_SQL = {"AsyncSession", "AsyncConnection", "AsyncEngine", "DBAPIError", "make_url"}

SQL = re.compile(
    r"\b(select\s+[\w*(].*\s+from|insert\s+into|update\s+\w+\s+set|delete\s+from|"
    r"create\s+(table|index)|alter\s+table)\b",
    re.IGNORECASE | re.DOTALL,
)


def _modules() -> list[Path]:
    return sorted(
        path
        for room in ROOMS
        for path in (ROOT / room).rglob("*.py")
        if "migrations" not in path.parts
    )


def _imported_rooms(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_there_are_modules_to_check() -> None:
    assert len(_modules()) > 50


def test_imports_run_down() -> None:
    upward = []
    for path in _modules():
        room = _name(path).split("/")[0]
        for line, module in _imported_rooms(ast.parse(path.read_text())):
            target = module.split(".")[0]
            if target in ROOMS and target != room and ROOMS[target] <= ROOMS[room]:
                upward.append(f"{_name(path)}:{line} imports {module}")
    assert upward == []


def test_botbuilder_stays_in_the_rooms_that_speak_to_teams() -> None:
    outside = []
    for path in _modules():
        name = _name(path)
        if name.split("/")[0] in BOTBUILDER_ROOMS or name in BOTBUILDER_FILES:
            continue
        for line, module in _imported_rooms(ast.parse(path.read_text())):
            if module.split(".")[0] == "botbuilder":
                outside.append(f"{name}:{line} imports {module}")
    assert outside == []


def test_sql_only_in_storage() -> None:
    statements = []
    for path in _modules():
        if _name(path).startswith("storage/"):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ) and SQL.search(node.value):
                statements.append(f"{_name(path)}:{node.lineno}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [(alias.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [(node.module, alias.name) for alias in node.names]
            else:
                continue
            for module, name in names:
                if module.split(".")[0] in {"sqlalchemy", "sqlmodel"} and name not in NOT_SQL:
                    statements.append(f"{_name(path)}:{node.lineno} imports {name} from {module}")
    assert statements == []


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_module_is_too_big(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= LARGEST_MODULE, f"{_name(path)} has {lines} lines"
