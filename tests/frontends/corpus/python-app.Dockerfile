# syntax=docker/dockerfile:1
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv
RUN python -m venv "$VIRTUAL_ENV"
ENV PATH="$VIRTUAL_ENV/bin:$PATH"
WORKDIR /build
COPY requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements.txt
COPY . .
RUN <<EOF
set -eux
pip install --no-deps .
python -m compileall -q "$VIRTUAL_ENV"
EOF

FROM python:${PYTHON_VERSION}-slim
ARG PYTHON_VERSION
LABEL org.opencontainers.image.title="app" \
      org.opencontainers.image.description="Python ${PYTHON_VERSION} application"
RUN groupadd --system app && useradd --system --gid app --home /srv app
COPY --from=builder /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1
WORKDIR /srv
USER app
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app.wsgi"]
