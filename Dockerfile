# The indexer daemon, as the `indexer` service of docker-compose.yml.
#   docker build -t near-intents-indexer .
#   docker run --rm near-intents-indexer intents-indexer --help
FROM python:3.11-slim

# The package is installed into site-packages; its SQL migrations stay in /app/migrations.
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INDEXER_MIGRATIONS_DIR=/app/migrations \
    INDEXER_LOG_FORMAT=json

WORKDIR /app

COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY migrations ./migrations
RUN pip install . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin indexer \
    && mkdir -p /app/data \
    && chown indexer /app/data

USER indexer
# Prometheus /metrics (see CMD).
EXPOSE 9464
# Embedded store by default (chdb:///app/data); compose points it at the ClickHouse server.
ENV INDEXER_STORE=chdb:///app/data
CMD ["intents-indexer", "run", "--metrics-port", "9464", "--metrics-host", "0.0.0.0"]
