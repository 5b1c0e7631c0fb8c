FROM python:3.11-slim
ENV UV_COMPILE_BYTECODE=1 DAGSTER_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
WORKDIR /opt/mdplatform
RUN pip install --no-cache-dir uv
COPY requirements.lock pyproject.toml README.md ./
RUN uv pip install --system -r requirements.lock
COPY . .
RUN uv pip install --system --no-deps . && mkdir -p /opt/dagster/home && cp dagster.yaml /opt/dagster/home/
