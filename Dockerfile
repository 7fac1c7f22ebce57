# The Proctor worker image (also runs any `proctor` command, e.g. `proctor db migrate`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proctor ./proctor
# proctor_server/ links to these three folders (COPY keeps the links): copy both.
COPY proctor_server ./proctor_server
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY policies ./policies
# The server side: the base package holds only what an agent needs (proctor[server] brings
# the worker, the approvals app, the CLI and their dependencies).
RUN pip install --no-cache-dir ".[server]" \
    && useradd --system --uid 10001 proctor \
    && mkdir -p /app/keys /app/audit-checkpoints \
    && chown proctor /app/keys /app/audit-checkpoints
# Named volumes mounted on these start with this ownership: the worker can write its keys.
USER proctor
ENV PROCTOR_POLICY_DIR=/app/policies \
    PYTHONUNBUFFERED=1
STOPSIGNAL SIGTERM
ENTRYPOINT ["proctor"]
CMD ["worker"]
