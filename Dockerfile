# CPU image for the API, the worker and the one-command local run.
#   docker build -t whisper-diarization .
#   docker run --rm -p 8001:8001 -v wd-data:/data whisper-diarization   # whole service; jobs, results
#                                               # and API keys persist in the volume (SQLite + files)
# docker-compose.localstack.yml runs the API and the worker from this image against LocalStack.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libsndfile1 curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1

# torch first, pinned and CPU-only, so nothing below pulls a multi-GB CUDA build.
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY shared shared
COPY api_lambda api_lambda
COPY gpu_worker gpu_worker
COPY onebox onebox
COPY client client
RUN pip install ".[local]" \
 && pip install --no-deps "resemblyzer==0.1.4" "whisperx==3.8.6"

ENV BACKEND=local \
    DATA_DIR=/data/service \
    UPLOAD_DIR=/data/work \
    MODEL_DIR=/models \
    MODEL_CACHE_DIR=/data/model-cache \
    LOG_JSON=true
RUN useradd --create-home --uid 10001 app && mkdir -p /data /models && chown app /data
USER app
VOLUME ["/data"]
EXPOSE 8001

CMD ["python", "-m", "onebox", "--host", "0.0.0.0", "--port", "8001"]
