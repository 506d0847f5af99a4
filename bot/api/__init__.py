"""The HTTP API v1 (FastAPI, served by uvicorn inside the bot's event loop): ``bot.api.server.ApiServer``.

Modules: ``app`` (the ASGI app and its envelope), ``routes`` (the /v1 resources), ``schemas`` (request
and response bodies), ``deps`` (caller, server scope, Idempotency-Key), ``auth`` (API keys, Discord
OAuth tokens, per-credential rate limit), ``problems`` (RFC 9457 problems), ``server`` (uvicorn).
"""
