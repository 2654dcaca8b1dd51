"""Getting messages to Teams: the outbox's one sender, within Teams' rate limits."""
