# Airflow image with this provider installed: the official image, extended as the Airflow docs recommend
# (https://airflow.apache.org/docs/docker-stack/build.html). Build with `docker compose build`.
# Keep AIRFLOW_VERSION equal to the apache-airflow pin in requirements/dev.lock (tests/deploy checks it).
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}

# An ARG before FROM is not visible after it; re-declared without a value, it takes the default above.
ARG AIRFLOW_VERSION

USER airflow

# Only what the wheel needs, so edits to tests or docs do not invalidate this layer.
COPY --chown=airflow:0 pyproject.toml README.md /opt/provider/
COPY --chown=airflow:0 airflow_provider_atlassian_qradar/ /opt/provider/airflow_provider_atlassian_qradar/

# Pinning apache-airflow to the image's own version stops pip from upgrading or downgrading Airflow
# while it resolves the provider's dependencies.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/provider

# Development tools (the Atlassian API simulator) for the compose `sandbox` profile. Not part of the provider:
# the Airflow services never import them, they are here so that profile needs no second image.
COPY --chown=airflow:0 sandbox/ /opt/dev-tools/sandbox/
ENV PYTHONPATH=/opt/dev-tools
