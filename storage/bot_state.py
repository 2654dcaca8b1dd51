"""A SQL implementation of botbuilder's `Storage`, with e-tag concurrency.

Each document carries a version. Reading returns it as the document's `e_tag`. Writing a
document whose `e_tag` is "*" (or that has none) overwrites whatever is stored; writing one
with any other `e_tag` succeeds only if the stored version still matches, so two turns that
read the same state cannot silently overwrite each other: the later write fails with
`StateConflictError`.

Documents are JSON. The dialog stack's `DialogState` and `DialogInstance` objects are
encoded as tagged dictionaries; any other non-JSON value is refused rather than pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botbuilder.core import ConversationState, Storage, StoreItem, TurnContext
from botbuilder.core.bot_state import CachedBotState
from botbuilder.dialogs import DialogInstance, DialogState
from sqlalchemy import bindparam, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.database import Database
from storage.models import BotStateItem, utc_now

_TYPE = "$type"
# Every turn reads its conversation's state: built once rather than every turn.
_READ = select(BotStateItem).where(col(BotStateItem.key).in_(bindparam("keys", expanding=True)))


class StateConflictError(KeyError):
    """The document changed since it was read (its e-tag no longer matches)."""


def _encode(value: Any) -> Any:
    if isinstance(value, DialogState):
        return {_TYPE: "DialogState", "stack": [_encode(i) for i in value.dialog_stack]}
    if isinstance(value, DialogInstance):
        return {_TYPE: "DialogInstance", "id": value.id, "state": _encode(value.state)}
    if isinstance(value, Mapping):
        if _TYPE in value:
            raise TypeError(f"state documents may not use the reserved key {_TYPE!r}")
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in bot state")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get(_TYPE)
        if kind == "DialogState":
            return DialogState([_decode(i) for i in value["stack"]])
        if kind == "DialogInstance":
            return DialogInstance(id=value["id"], state=_decode(value["state"]))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _etag_of(change: Any) -> str | None:
    etag = change.get("e_tag") if isinstance(change, Mapping) else getattr(change, "e_tag", None)
    return None if etag is None else str(etag)


def _document_of(change: Any) -> dict[str, Any]:
    if isinstance(change, Mapping):
        items = dict(change)
    elif isinstance(change, StoreItem):
        items = {k: v for k, v in vars(change).items() if not k.startswith("_")}
    else:
        raise TypeError(f"cannot store a {type(change).__name__} in bot state")
    items.pop("e_tag", None)
    return items


class _CachedState(CachedBotState):  # type: ignore[misc]
    """A turn's cached state, compared as the JSON it is stored as.

    botbuilder's own compares jsonpickle's rendering of it, made twice a turn: that cost
    more than reading the state from the database.
    """

    def compute_hash(self, obj: object) -> str:
        try:
            return json.dumps(_encode(obj), separators=(",", ":"))
        except TypeError:  # not storable: the write will say so; compare as botbuilder does
            return str(super().compute_hash(obj))


class SqlConversationState(ConversationState):  # type: ignore[misc]
    """botbuilder's conversation state, deciding whether it changed by its JSON."""

    async def load(self, turn_context: TurnContext, force: bool = False) -> None:
        """Read the conversation's state into the turn, unless the turn has it already."""
        # As botbuilder's BotState.load, with the cheaper comparison.
        cached = self.get_cached_state(turn_context)
        if force or not cached or not cached.state:
            key = self.get_storage_key(turn_context)
            items = await self._storage.read([key])
            turn_context.turn_state[self._context_service_key] = _CachedState(items.get(key))


class SqlStorage(Storage):  # type: ignore[misc]
    """Bot state kept in the `bot_state` table of the bot's database."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self._database = database

    async def read(self, keys: list[str]) -> dict[str, Any]:
        """Return the stored documents for these keys, each with its `e_tag`."""
        if not keys:
            return {}
        async with self._database.session() as session:
            rows = (await session.exec(_READ, params={"keys": list(keys)})).all()
        found: dict[str, Any] = {}
        for row in rows:
            document = _decode(json.loads(row.document))
            document["e_tag"] = str(row.version)
            found[row.key] = document
        return found

    async def write(self, changes: dict[str, Any]) -> None:
        """Store the documents; raise StateConflictError if one changed since it was read."""
        if changes is None:
            raise ValueError("changes are required when writing")
        for key, change in changes.items():
            etag = _etag_of(change)
            document = json.dumps(_encode(_document_of(change)), separators=(",", ":"))
            if etag in (None, "*"):
                await self._overwrite(key, document)
            else:
                await self._replace_if_unchanged(key, document, etag)

    async def _overwrite(self, key: str, document: str) -> None:
        for _attempt in range(3):
            async with self._database.session() as session:
                result = await session.exec(
                    update(BotStateItem)
                    .where(col(BotStateItem.key) == key)
                    .values(
                        document=document,
                        version=col(BotStateItem.version) + 1,
                        updated_at=utc_now(),
                    )
                )
                if result.rowcount:
                    return
            try:
                async with self._database.session() as session:
                    session.add(BotStateItem(key=key, document=document, version=1))
                return
            except IntegrityError:
                continue  # another writer inserted the key first: update it instead
        raise StateConflictError(f"could not store bot state {key!r} after repeated conflicts")

    async def _replace_if_unchanged(self, key: str, document: str, etag: str) -> None:
        try:
            version = int(etag)
        except ValueError as error:
            raise StateConflictError(f"bot state {key!r}: e-tag {etag!r} is not ours") from error
        async with self._database.session() as session:
            result = await session.exec(
                update(BotStateItem)
                .where(col(BotStateItem.key) == key, col(BotStateItem.version) == version)
                .values(document=document, version=version + 1, updated_at=utc_now())
            )
            if not result.rowcount:
                raise StateConflictError(
                    f"bot state {key!r} changed since it was read (e-tag {etag})"
                )

    async def delete(self, keys: list[str]) -> None:
        """Remove the documents for these keys; missing keys are ignored."""
        keys = list(keys)
        if not keys:
            return
        async with self._database.session() as session:
            await session.exec(delete(BotStateItem).where(col(BotStateItem.key).in_(keys)))
