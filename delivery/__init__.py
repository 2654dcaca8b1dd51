"""Getting messages to Teams: the outbox's one sender, Teams' rate limits, a turn's answers."""
