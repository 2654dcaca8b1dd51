"""Microsoft Graph: who the staff are (the roster from Entra ID) and, later, installing the app.

No botbuilder and no SQL: `graph.py` is a small typed Graph client (paging, throttling,
sign-in), `mapping.py` reads the council's department and job title mapping, `roster_diff.py`
works out what a sync changes as a pure function, and `sync.py` reads Graph and applies the
changes through `storage/`.
"""
