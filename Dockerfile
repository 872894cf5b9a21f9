# One image for the API, the workers and the dashboard; the command picks the role.
#   docker build -t robustlab .                        # CPU
#   docker build --build-arg VARIANT=cuda -t robustlab:cuda .   # CUDA (PyPI's torch bundles CUDA)
ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS build
ARG VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first and pinned: the CPU build from PyTorch's index, or the CUDA build from PyPI.
RUN if [ "$VARIANT" = "cpu" ]; then \
      pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
    else pip install torch==2.13.0; fi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY api api
COPY worker worker
COPY dashboard dashboard
COPY scripts scripts
# s3: artifacts in an object store; mlflow: tracking, on when MLFLOW_TRACKING_URI is set
RUN pip install '.[s3,mlflow]'

FROM python:${PYTHON}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 robustlab
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/scripts /app/scripts
COPY --from=build /src/dashboard /app/dashboard
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 ROBUSTLAB_VAR_DIR=/data
RUN mkdir -p /data && chown robustlab /data
USER robustlab
WORKDIR /app
EXPOSE 8000 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
