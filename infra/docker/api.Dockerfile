# syntax=docker/dockerfile:1.7
# The API image, built from the repository root with the locked workspace:
#   docker build -f infra/docker/api.Dockerfile -t forgestack-api .
# It also carries the `forgestack` CLI, so the same image runs `forgestack db upgrade` and
# `forgestack db create-app-login` (compose's migrate service, the Kubernetes migration Job).
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /src
# Dependencies first, from the lock alone: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
COPY apps/api/pyproject.toml apps/api/
COPY apps/cli/pyproject.toml apps/cli/
COPY apps/worker/pyproject.toml apps/worker/
COPY packages/db/pyproject.toml packages/db/
COPY packages/queue/pyproject.toml packages/queue/
COPY packages/shared/pyproject.toml packages/shared/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-workspace --package forgestack-cli
COPY apps apps
COPY packages packages
# Non-editable: the runtime stage copies the virtualenv alone, without the sources.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --package forgestack-cli

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 forgestack \
    && useradd --system --uid 10001 --gid forgestack --home-dir /app --no-create-home forgestack
COPY --from=build --chown=root:root /src/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 \
    ENVIRONMENT=prod LOG_JSON=true API_HOST=0.0.0.0 API_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}/healthz\", timeout=2)"]
CMD ["api"]
