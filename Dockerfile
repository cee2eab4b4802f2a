# A slim image that runs `lain-console serve` as an unprivileged user.
#
# BASE is any Debian-like image with Python 3.11+ and its venv module. CI builds on a
# debootstrapped Debian (`.ci/image-test`), where the interpreter is `python3`, not `python`.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# The third-party packages come from requirements.lock (pinned, hashed: `make lock`), in a
# layer of their own that stays cached until the lock changes.
COPY requirements.lock /src/requirements.lock
RUN python3 -m venv /opt/lain-console \
    && /opt/lain-console/bin/pip install --no-cache-dir --require-hashes \
        -r /src/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lainyaml ./lainyaml
COPY store ./store
COPY backends ./backends
COPY resolvers ./resolvers
COPY schema ./schema
COPY rest_compat ./rest_compat
COPY server ./server
COPY client ./client
# --no-deps: everything the project needs is in the lock; nothing unpinned gets in.
RUN /opt/lain-console/bin/pip install --no-cache-dir --no-deps . \
    && /opt/lain-console/bin/pip check

FROM ${BASE}
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
# `python` is the venv's (first on PATH), whatever the base calls its interpreter.
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["lain-console", "serve"]
