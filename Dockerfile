# The learner image: every package, notebook and dataset of the lesson, for CPU or CUDA.
#   dlworkshop image build --variant cpu|cuda [--base-image IMG] [--ca-bundle FILE] [--data-mirror M]
# Needs BuildKit (DOCKER_BUILDKIT=1): secrets carry an extra CA bundle and a registry override.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS environment
ARG VARIANT=cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# Public Python images lack tini and Graphviz (pydot); the offline Debian base already has them.
RUN --mount=type=secret,id=ca_bundle \
    if ! command -v tini >/dev/null || ! command -v dot >/dev/null; then \
      apt-get update -qq && apt-get install -y -qq --no-install-recommends tini graphviz procps \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --create-home --uid 1000 --shell /bin/bash jovyan \
    && python3 -m venv /opt/venv
COPY image/requirements-${VARIANT}.lock /opt/dlworkshop/requirements.lock
# Hash-locked: pip refuses anything not in the lock. The CA bundle lets pip trust a TLS-intercepting
# proxy without turning verification off.
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r /opt/dlworkshop/requirements.lock \
    && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib > /dev/null

FROM environment AS learner
ARG VARIANT=cpu
ARG DATA_MIRROR=""
ARG GIT_REVISION=unknown
ARG LOCK_SHA256=unknown
ENV PATH=/opt/venv/bin:$PATH \
    DLWORKSHOP_DATA=/opt/dlworkshop/data \
    DLWORKSHOP_REGISTRY=/opt/dlworkshop/data/registry.yaml \
    DLWORKSHOP_LESSONS=/opt/dlworkshop/lessons \
    DLWORKSHOP_WORK=/home/jovyan/work
COPY pyproject.toml README.md /opt/dlworkshop/src/
COPY dlworkshop /opt/dlworkshop/src/dlworkshop
COPY dlworkshop_learner /opt/dlworkshop/src/dlworkshop_learner
COPY image/learner_hooks.py /opt/venv/lib/python3.11/site-packages/dlworkshop_learner_hooks.py
COPY image/learner_kernels.py /opt/venv/lib/python3.11/site-packages/dlworkshop_learner_kernels.py
RUN pip install --no-deps --no-build-isolation --no-compile -q /opt/dlworkshop/src \
    && rm -rf /opt/dlworkshop/src /opt/dlworkshop/src/build \
    && python -m compileall -q /opt/venv/lib/python3.11/site-packages/dlworkshop* > /dev/null
# Every dataset fetched once and verified by hash; a mismatch fails the build.
COPY lessons/datasets.yaml /opt/dlworkshop/datasets.yaml
RUN --mount=type=secret,id=ca_bundle --mount=type=secret,id=registry \
    if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi; \
    registry=/opt/dlworkshop/datasets.yaml; \
    if [ -s /run/secrets/registry ]; then registry=/run/secrets/registry; fi; \
    mkdir -p /opt/dlworkshop/data && cp "$registry" /opt/dlworkshop/data/registry.yaml \
    && dlworkshop data fetch --dest /opt/dlworkshop/data --registry /opt/dlworkshop/data/registry.yaml \
         ${DATA_MIRROR:+--mirror "$DATA_MIRROR"} \
    && dlworkshop data verify --dest /opt/dlworkshop/data --registry /opt/dlworkshop/data/registry.yaml \
    && dlworkshop data plan --dest /opt/dlworkshop/data --registry /opt/dlworkshop/data/registry.yaml \
    && chmod -R a+rX,a-w /opt/dlworkshop/data
COPY image/jupyter/jupyter_server_config.py /etc/jupyter/jupyter_server_config.py
COPY image/start.sh image/healthcheck.py /opt/dlworkshop/
COPY lessons /opt/dlworkshop/lessons
RUN echo "import dlworkshop_learner_hooks; dlworkshop_learner_hooks.install()" \
      > /opt/venv/lib/python3.11/site-packages/dlworkshop-learner.pth \
    && rm -f /opt/dlworkshop/lessons/datasets.yaml \
    && install -d -o jovyan -g jovyan /home/jovyan/work
LABEL org.opencontainers.image.title="dlworkshop learner" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.dlworkshop.variant="${VARIANT}" \
      org.dlworkshop.lock-sha256="${LOCK_SHA256}"
USER 1000
WORKDIR /home/jovyan/work
EXPOSE 8888
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 CMD ["python", "/opt/dlworkshop/healthcheck.py"]
ENTRYPOINT ["tini", "-g", "--", "/opt/dlworkshop/start.sh"]
CMD ["jupyterhub-singleuser"]
