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
