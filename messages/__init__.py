"""What the bot tells people outside a dialog, built from cards and queued to the outbox."""
