# Runtime image: the service and its pinned runtime dependencies, running as an unprivileged user.
# `serve` applies pending migrations; with several replicas, run `ipt-fhir migrate` once before them.
FROM python:3.11-slim AS build
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements-runtime.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements-runtime.lock
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY mappings ./mappings
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 ipt
COPY --from=build /opt/venv /opt/venv
# Migrations are read from the project tree, next to the installed package.
COPY --from=build /app/alembic.ini /app/alembic.ini
COPY --from=build /app/migrations /app/migrations
COPY --from=build /app/service /app/service
COPY --from=build /app/mappings /app/mappings
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app IPT_FHIR_HOST=0.0.0.0 PORT=8080 DATA_DIR=/data
RUN mkdir /data && chown ipt /data
USER ipt
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health')"
CMD ["ipt-fhir", "serve"]
