# Shared by scripts/run and scripts/test: make .venv with Python 3.11+ and install the project.
venv_install() {  # $1: extras, e.g. "test" (or empty)
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python="$candidate"; break
      fi
    done
  fi
  [ -n "$python" ] || { echo "Taskcast needs Python 3.11 or newer" >&2; exit 1; }
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local target="."
  [ -n "${1:-}" ] && target=".[$1]"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target" 2> >(grep -v 'is ignored: it is neither' >&2)
}

ensure_redis() {  # start a private redis-server when none answers at $REDIS_URL
  local url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  redis_answers() {
    .venv/bin/python -c 'import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' "$url" 2>/dev/null
  }
  redis_answers && return 0
  if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "Installing redis-server (Debian package)…" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      echo "No Redis answers at $url and there is no redis-server to start: install Redis 7." >&2
      exit 1
    fi
  fi
  local port dir
  port=$(.venv/bin/python -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).port or 6379)' "$url")
  dir=$(mktemp -d)
  echo "No Redis at $url: starting a private redis-server on port $port (data in $dir)" >&2
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize no &
  REDIS_PID=$!
  trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null' EXIT
  for _ in $(seq 100); do redis_answers && return 0; sleep 0.1; done
  echo "redis-server did not answer; see $dir/redis.log" >&2
  exit 1
}

ensure_compose() {  # for the test that checks docker-compose.yml; best effort, never fatal
  docker compose version >/dev/null 2>&1 && return 0
  command -v docker-compose >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing docker-compose (Debian package) to check docker-compose.yml…" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) \
      >/dev/null 2>&1 || echo "could not install docker-compose; that test will be skipped" >&2
  fi
  return 0
}

ensure_asyncapi_parser() {  # the official AsyncAPI parser (npm), for the document's validity test
  [ -d tools/asyncapi/node_modules/@asyncapi/parser ] && return 0
  if command -v npm >/dev/null; then
    (cd tools/asyncapi && npm install --silent --no-audit --no-fund) \
      || echo "could not install @asyncapi/parser; that test will fail" >&2
  fi
  return 0
}

ensure_chromium() {  # Debian's Chromium for the page tests (Playwright cannot download browsers here)
  command -v chromium >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing chromium (Debian package) for the page tests…" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >/dev/null 2>&1 || echo "could not install chromium; the page tests will be skipped" >&2
  fi
  return 0
}
