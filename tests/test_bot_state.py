"""The SQL botbuilder Storage: e-tag concurrency and dialog-state round trips, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botbuilder.core import StoreItem, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationAccount

from storage.bot_state import SqlConversationState, SqlStorage, StateConflictError
from storage.database import Database


async def test_read_of_missing_keys_is_empty(database: Database) -> None:
    storage = SqlStorage(database)
    assert await storage.read([]) == {}
    assert await storage.read(["nothing-here"]) == {}


async def test_write_read_delete(database: Database) -> None:
    storage = SqlStorage(database)
    await storage.write({"a": {"count": 1, "names": ["x", "y"]}, "b": {"flag": True}})
    found = await storage.read(["a", "b", "c"])
    assert set(found) == {"a", "b"}
    assert found["a"]["count"] == 1
    assert found["a"]["names"] == ["x", "y"]
    assert found["a"]["e_tag"] == "1"
    await storage.delete(["a", "missing"])
    assert set(await storage.read(["a", "b"])) == {"b"}


async def test_matching_etag_updates_and_bumps_the_version(database: Database) -> None:
    storage = SqlStorage(database)
    await storage.write({"k": {"n": 1}})
    first = (await storage.read(["k"]))["k"]
    first["n"] = 2
    await storage.write({"k": first})
    second = (await storage.read(["k"]))["k"]
    assert second["n"] == 2
    assert second["e_tag"] == "2"


async def test_stale_etag_is_refused_and_changes_nothing(database: Database) -> None:
    storage = SqlStorage(database)
    await storage.write({"k": {"n": 1}})
    turn_a = (await storage.read(["k"]))["k"]
    turn_b = (await storage.read(["k"]))["k"]
    turn_a["n"] = 2
    await storage.write({"k": turn_a})
    turn_b["n"] = 3
    with pytest.raises(StateConflictError):
        await storage.write({"k": turn_b})
    assert (await storage.read(["k"]))["k"]["n"] == 2


async def test_unknown_etag_and_etag_for_a_missing_key_fail(database: Database) -> None:
    storage = SqlStorage(database)
    with pytest.raises(StateConflictError):
        await storage.write({"new": {"n": 1, "e_tag": "5"}})
    await storage.write({"k": {"n": 1}})
    with pytest.raises(StateConflictError):
        await storage.write({"k": {"n": 1, "e_tag": "not-a-version"}})


async def test_star_etag_overwrites(database: Database) -> None:
    storage = SqlStorage(database)
    await storage.write({"k": {"n": 1}})
    await storage.write({"k": {"n": 2}})
    await storage.write({"k": {"n": 3, "e_tag": "*"}})
    found = (await storage.read(["k"]))["k"]
    assert found["n"] == 3
    assert found["e_tag"] == "3"


async def test_store_items_are_accepted(database: Database) -> None:
    storage = SqlStorage(database)
    await storage.write({"item": StoreItem(colour="green", e_tag="*")})
    assert (await storage.read(["item"]))["item"]["colour"] == "green"


async def test_dialog_state_round_trip(database: Database) -> None:
    storage = SqlStorage(database)
    state = DialogState(
        [DialogInstance(id="AuditDialog", state={"audit_id": 7, "return_to_summary": False})]
    )
    await storage.write({"conv": {"DialogState": state}})
    found = (await storage.read(["conv"]))["conv"]["DialogState"]
    assert isinstance(found, DialogState)
    assert found.dialog_stack[0].id == "AuditDialog"
    assert found.dialog_stack[0].state == {"audit_id": 7, "return_to_summary": False}


async def test_objects_that_are_not_json_are_refused(database: Database) -> None:
    storage = SqlStorage(database)
    with pytest.raises(TypeError):
        await storage.write({"k": {"when": object()}})
    with pytest.raises(TypeError):
        await storage.write({"k": {"$type": "DialogState"}})


async def test_concurrent_writers_with_the_same_etag_one_wins(database: Database) -> None:
    storage = SqlStorage(database)
    await storage.write({"k": {"n": 0}})
    base = (await storage.read(["k"]))["k"]

    async def write(n: int) -> bool:
        try:
            await storage.write({"k": {**base, "n": n}})
        except StateConflictError:
            return False
        return True

    results = await asyncio.gather(*(write(n) for n in range(1, 9)))
    assert sum(results) == 1
    assert (await storage.read(["k"]))["k"]["e_tag"] == "2"


async def test_concurrent_first_writes_do_not_fail(database: Database) -> None:
    storage = SqlStorage(database)
    await asyncio.gather(*(storage.write({"fresh": {"n": n}}) for n in range(6)))
    assert (await storage.read(["fresh"]))["fresh"]["e_tag"] == "6"


class CountingStorage(SqlStorage):
    """Counts the writes reaching the table."""

    writes = 0

    async def write(self, changes: dict[str, Any]) -> None:
        self.writes += 1
        await super().write(changes)


def _turn() -> TurnContext:
    return TurnContext(
        TestAdapter(),
        Activity(
            type=ActivityTypes.message,
            channel_id="msteams",
            conversation=ConversationAccount(id="a:chat-1"),
            from_property=ChannelAccount(id="29:someone"),
            recipient=ChannelAccount(id="28:bot"),
        ),
    )


async def test_conversation_state_is_written_only_when_it_changed(database: Database) -> None:
    storage = CountingStorage(database)
    state = SqlConversationState(storage)
    dialogs = state.create_property("DialogState")

    turn = _turn()
    stack = await dialogs.get(turn, DialogState)
    stack.dialog_stack.append(DialogInstance(id="AuditDialog", state={"audit_id": 7}))
    await state.save_changes(turn)
    assert storage.writes == 1

    turn = _turn()  # a turn that reads the state and changes nothing
    found = await dialogs.get(turn, DialogState)
    assert found.dialog_stack[0].state == {"audit_id": 7}
    await state.save_changes(turn)
    assert storage.writes == 1

    turn = _turn()  # a change deep inside the stack is still a change
    found = await dialogs.get(turn, DialogState)
    found.dialog_stack[0].state["return_to_summary"] = True
    await state.save_changes(turn)
    assert storage.writes == 2
    turn = _turn()
    found = await dialogs.get(turn, DialogState)
    assert found.dialog_stack[0].state == {"audit_id": 7, "return_to_summary": True}


async def test_conversation_state_that_cannot_be_stored_is_still_refused(
    database: Database,
) -> None:
    state = SqlConversationState(SqlStorage(database))
    turn = _turn()
    await state.load(turn)
    state.get(turn)["when"] = object()
    with pytest.raises(TypeError):
        await state.save_changes(turn)
