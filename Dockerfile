# syntax=docker/dockerfile:1

# --- build: dependencies first, so a code change does not reinstall them ---------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Exactly the locked versions, each file checked against its sha256 (`make lock` writes the lock from
# pyproject.toml; it holds the build backend too). This layer is keyed on the lock alone.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-deps --no-build-isolation .

# --- runtime: slim, non-root, state on a volume -----------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DATABASE_PATH=/data/bot.sqlite3 \
    HEALTH_FILE=/tmp/dscgg-bot.health
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin dscgg \
    && mkdir /data && chown dscgg:dscgg /data
COPY --from=build /opt/venv /opt/venv
USER dscgg
WORKDIR /data
# The database, its WAL files and the generated encryption key (when TOKEN_ENCRYPTION_KEYS is unset).
VOLUME ["/data"]
# The bot refreshes HEALTH_FILE only while all its shards are connected; stale or missing = unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-m", "bot.health"]
# Exec form: python is PID 1 and receives SIGTERM from `docker stop` to shut down cleanly.
CMD ["python", "-m", "bot"]
