# The Proctor worker image (also runs any `proctor` command, e.g. `proctor db migrate`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proctor ./proctor
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY policies ./policies
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 proctor
USER proctor
ENV PROCTOR_POLICY_DIR=/app/policies
ENTRYPOINT ["proctor"]
CMD ["worker"]
