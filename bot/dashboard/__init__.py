"""The web dashboard: admins log in with Discord and manage their servers' links, API keys, audit log and
settings in a browser. Part of the HTTP API's app (same process, same services, same audit trail);
see ``bot.dashboard.routes`` for the pages and ``bot.dashboard.pages`` for what they share."""
