"""The one sender: deliver the outbox to Teams within its rate limits."""
