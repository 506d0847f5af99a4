"""Slash-command cogs, loaded in this order by DscBot.setup_hook."""

EXTENSIONS: tuple[str, ...] = ("cogs.admin", "cogs.links", "cogs.discovery")
