"""The Teams bot: settings, the aiohttp app, the activity handler, proactive messages, the CLI."""
