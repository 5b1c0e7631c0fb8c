FROM python:3.11-slim
ENV UV_COMPILE_BYTECODE=1 DAGSTER_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
WORKDIR /opt/mdplatform
RUN pip install --no-cache-dir uv
COPY requirements.lock pyproject.toml README.md ./
RUN uv pip install --system -r requirements.lock
COPY . .
# the book code has a small C extension (mdplatform/book/_native.c): a compiler while the package builds, then gone
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && uv pip install --system --no-deps . \
 && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /opt/dagster/home && cp dagster.yaml /opt/dagster/home/
