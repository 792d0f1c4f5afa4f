FROM python:3.11-slim
# Built from a copy of the sources that the image then drops: what runs is the installed wheel,
# so a module the packaging leaves out fails here as it would for any user.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY platform platform
COPY showcase showcase
COPY web web
COPY workers workers
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /app
# Quoted: Docker removes bare quotes from ENV values, which would leave [localhost,127.0.0.1].
ENV HOST=0.0.0.0 PORT=8000 TASKCAST_ALLOWED_HOSTS='["localhost","127.0.0.1"]'
EXPOSE 8000 5555
CMD ["python", "-m", "web"]
