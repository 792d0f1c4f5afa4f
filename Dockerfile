FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY platform platform
COPY web web
COPY workers workers
RUN pip install --no-cache-dir .
ENV HOST=0.0.0.0 PORT=8000 TASKCAST_ALLOWED_HOSTS=["localhost","127.0.0.1"]
EXPOSE 8000 5555
CMD ["python", "-m", "web"]
