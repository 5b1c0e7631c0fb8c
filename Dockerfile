FROM python:3.11-slim
ENV UV_COMPILE_BYTECODE=1 DAGSTER_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
WORKDIR /opt/mdplatform
RUN pip install --no-cache-dir uv
# runtime dependencies only: the dev lock's versions without its test and lint tools (make lock writes both)
COPY requirements-runtime.lock pyproject.toml README.md ./
RUN uv pip install --system -r requirements-runtime.lock
COPY . .
# two small compiled parts (the book's mdplatform/book/_native.c, the collector's mdplatform/collector/_batcher.pyx):
# a compiler while the package builds, then gone
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && uv pip install --system --no-deps . \
 && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /opt/dagster/home && cp dagster.yaml /opt/dagster/home/
