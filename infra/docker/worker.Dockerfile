# syntax=docker/dockerfile:1.7
# The worker image, built from the repository root with the locked workspace:
#   docker build -f infra/docker/worker.Dockerfile -t forgestack-worker .
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY apps/api/pyproject.toml apps/api/
COPY apps/cli/pyproject.toml apps/cli/
COPY apps/worker/pyproject.toml apps/worker/
COPY packages/db/pyproject.toml packages/db/
COPY packages/queue/pyproject.toml packages/queue/
COPY packages/shared/pyproject.toml packages/shared/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-workspace --package forgestack-worker
COPY apps apps
COPY packages packages
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --package forgestack-worker

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 forgestack \
    && useradd --system --uid 10001 --gid forgestack --home-dir /app --no-create-home forgestack
COPY --from=build --chown=root:root /src/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 ENVIRONMENT=prod LOG_JSON=true
WORKDIR /app
USER 10001:10001
# arq's own check: the worker's health key in Redis is recent (written every 10 s).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["arq", "worker.WorkerSettings", "--check"]
# SIGTERM drains for WORKER_SHUTDOWN_GRACE_S; give the container's stop timeout more than that.
STOPSIGNAL SIGTERM
CMD ["arq", "worker.WorkerSettings"]
