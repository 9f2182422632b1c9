# The gateway image: uvicorn (uvloop + httptools) serving the ASGI app on port 4000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GATEWAY_DATA_DIR=/data

WORKDIR /app
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 gateway \
    && mkdir -p /data && chown gateway /data

COPY pyproject.toml README.md ./
COPY apps ./apps
COPY proxy_project ./proxy_project
COPY templates ./templates
COPY manage.py ./
RUN pip install .

USER gateway
EXPOSE 4000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD curl -fsS http://127.0.0.1:4000/health/liveliness || exit 1

# Config: mount a LiteLLM-style config.yaml at /config/config.yaml (see docker-compose.yml).
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "4000", \
     "--config", "/config/config.yaml"]
