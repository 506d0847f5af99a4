"""dscgg-bot: manage a Discord server's dsc.gg short links with slash commands."""

__version__ = "0.1.0"
