"""Durable storage: sqlmodel tables, repositories, the botbuilder state store, migrations."""
