"""Dialogs: one per file; each opens with its states and transitions."""
