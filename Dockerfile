# The learner image: every package, notebook and dataset of the lesson, for CPU or CUDA.
#   dlworkshop image build --variant cpu|cuda [--base-image IMG] [--ca-bundle FILE] [--data-mirror M]
# The build command passes the image's paths and account (dlworkshop_learner/layout.py) as build
# args, and fetches and verifies the data on the building machine first, into DATA_FOLDER.
# Layers go from the slowest-changing to the fastest: system and locked packages, data, lessons and
# config, then this project's code, installed --no-deps, so a code change rebuilds only the last.
# Needs BuildKit (DOCKER_BUILDKIT=1): a secret carries the CA bundle every step that downloads
# trusts (apt, pip; `dlworkshop image build` passes this host's own by default, image.ca_bundle).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS environment
ARG VARIANT=cpu
ARG LEARNER_USER
ARG LEARNER_UID
ARG LEARNER_HOME
ARG VENV
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# Public Python images lack tini and Graphviz (pydot); the offline Debian base already has them.
RUN --mount=type=secret,id=ca_bundle \
    : "${VENV:?build args missing: build with dlworkshop image build}" \
    && apt_ca=() && if [ -s /run/secrets/ca_bundle ]; then apt_ca=(-o Acquire::https::CAInfo=/run/secrets/ca_bundle); fi \
    && if ! command -v tini >/dev/null || ! command -v dot >/dev/null; then \
      apt-get "${apt_ca[@]}" update -qq \
      && apt-get "${apt_ca[@]}" install -y -qq --no-install-recommends tini graphviz procps \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --create-home --home-dir "${LEARNER_HOME}" --uid "${LEARNER_UID}" --shell /bin/bash "${LEARNER_USER}" \
    && python3 -m venv "${VENV}"
COPY image/requirements-${VARIANT}.lock ${VENV}/requirements.lock
# Hash-locked: pip refuses anything not in the lock. The CA bundle lets pip trust a TLS-intercepting
# proxy without turning verification off (pip's own, certifi, does not know the proxy's CA).
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && "${VENV}/bin/pip" install --require-hashes --no-deps -r "${VENV}/requirements.lock" \
    && "${VENV}/bin/python" -m compileall -q -j 0 "${VENV}/lib" > /dev/null

FROM environment AS learner
ARG LEARNER_USER
ARG LEARNER_UID
ARG VENV
ARG DATA_ROOT
ARG REGISTRY
ARG LESSONS_DIR
ARG WORK_FOLDER
ARG SERVER_PORT
# The verified copies `dlworkshop image build` fetched, in the build context (.cache/image-data/<hash>).
ARG DATA_FOLDER
ENV PATH=${VENV}/bin:$PATH \
    DLWORKSHOP_DATA=${DATA_ROOT} \
    DLWORKSHOP_REGISTRY=${REGISTRY} \
    DLWORKSHOP_LESSONS=${LESSONS_DIR} \
    DLWORKSHOP_WORK=${WORK_FOLDER}
# Content-addressed: cached while the data is unchanged. Root's, read-only for the learner.
COPY ${DATA_FOLDER} ${DATA_ROOT}
COPY lessons ${LESSONS_DIR}
COPY image/jupyter/jupyter_server_config.py /etc/jupyter/jupyter_server_config.py
# JupyterLab asks no learner about Jupyter news (the announcements plugin off, as docker-stacks does).
COPY image/jupyter/page_config.json /etc/jupyter/labconfig/page_config.json
RUN install -d -o "${LEARNER_USER}" -g "${LEARNER_USER}" "${WORK_FOLDER}"
# This project's code (dlworkshop and dlworkshop_learner, one distribution), last of all. The data
# is verified again inside the image (a mismatch fails the build), and the links each server start
# makes are planned from the registry.
COPY pyproject.toml README.md /tmp/dlworkshop/
COPY dlworkshop /tmp/dlworkshop/dlworkshop
COPY dlworkshop_learner /tmp/dlworkshop/dlworkshop_learner
RUN pip install --no-deps --no-build-isolation --no-compile -q /tmp/dlworkshop \
    && rm -rf /tmp/dlworkshop \
    && site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && echo "import dlworkshop_learner.process_hooks; dlworkshop_learner.process_hooks.install()" \
      > "$site/dlworkshop-learner.pth" \
    && python -m compileall -q "$site"/dlworkshop* > /dev/null \
    && dlworkshop data verify --dest "${DATA_ROOT}" \
    && dlworkshop data plan --dest "${DATA_ROOT}"
USER ${LEARNER_UID}
WORKDIR ${WORK_FOLDER}
EXPOSE ${SERVER_PORT}
# For a container run on its own (the hub turns it off for the servers it spawns): rare and cheap,
# as every idle container pays for it (a Python without the learner hooks, about 0.03 CPU-s).
HEALTHCHECK --interval=60s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-m", "dlworkshop_learner.healthcheck"]
ENTRYPOINT ["tini", "-g", "--", "python", "-m", "dlworkshop_learner.start"]
CMD ["jupyterhub-singleuser"]
# Labels last: the revision changes with every commit.
ARG VARIANT
ARG GIT_REVISION=unknown
ARG LOCK_SHA256=unknown
LABEL org.opencontainers.image.title="dlworkshop learner" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.dlworkshop.variant="${VARIANT}" \
      org.dlworkshop.lock-sha256="${LOCK_SHA256}"
