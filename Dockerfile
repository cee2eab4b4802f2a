# A slim image that runs `lain-console serve` as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY spec ./spec
COPY store ./store
COPY backends ./backends
COPY resolvers ./resolvers
COPY schema ./schema
COPY rest_compat ./rest_compat
COPY server ./server
RUN python -m venv /opt/lain-console \
    && /opt/lain-console/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/lain-console/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/lain-console --uid 10001 lain
COPY --from=build /opt/lain-console /opt/lain-console
ENV PATH=/opt/lain-console/bin:$PATH \
    LAIN_CONSOLE_DATA_DIR=/var/lib/lain-console \
    LAIN_CONSOLE_HOST=0.0.0.0 \
    LAIN_CONSOLE_PORT=8000 \
    LAIN_CONSOLE_LOG_FORMAT=json
USER lain
WORKDIR /var/lib/lain-console
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["lain-console", "serve"]
