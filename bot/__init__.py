"""The Teams bot: settings, the aiohttp app, the activity handler, the CLI."""
