"""The monthly cycle: its jobs, and the APScheduler that runs them each working morning."""
