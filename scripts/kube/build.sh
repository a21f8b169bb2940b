#!/usr/bin/env bash
# Build the local test cluster's Kubernetes 1.20.2 binaries from Debian's own source package
# (it carries its vendor/ tree, so the build needs no network beyond apt) and cache them.
# Nothing is rebuilt when the cache holds them. Recipe and reasons: ../shared/LAB.md,
# "A real Kubernetes on this kind of machine"; README "Kubernetes".
set -euo pipefail

CACHE="${TISBENCH_KUBE_CACHE:-$HOME/.cache/tisbench/kube}"
VERSION=v1.20.2
BIN="$CACHE/$VERSION/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet pause)

say() { echo "kube-build: $*"; }

have_all() {
    local b
    for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
    command -v etcd >/dev/null && command -v kubectl >/dev/null && command -v socat >/dev/null
}

if have_all; then
    say "Kubernetes $VERSION binaries are cached in $BIN"
    exit 0
fi

apt_install() {
    say "installing from Debian: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

say "adding Debian's source index (bookworm deb-src) for the kubernetes source package"
cat > /etc/apt/sources.list.d/tisbench-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt-get update -qq
apt_install golang-go rsync etcd-server etcd-client kubectl gcc openssl socat

WORK="$CACHE/src"
mkdir -p "$WORK" "$BIN"
cd "$WORK"
if ! ls -d kubernetes-*/ >/dev/null 2>&1; then
    say "fetching the kubernetes source package (34 MB)"
    apt-get source -qq kubernetes >/dev/null
fi
TREE="$(ls -d "$WORK"/kubernetes-*/ | head -n1)"
cd "$TREE"

# This sandbox forbids lowering oom_score_adj and the 1.20 dockershim sets -998 on every sandbox:
# no pod would start. Never set the score below 0.
say "patching the dockershim so it never lowers oom_score_adj"
sed -i 's/^\(\s*\)hc.OomScoreAdj = defaultSandboxOOMAdj$/\1hc.OomScoreAdj = 0 \/\/ tisbench: oom_score_adj may not be lowered here/' \
    pkg/kubelet/dockershim/docker_sandbox.go
sed -i 's/^\(\s*\)createConfig.HostConfig.OomScoreAdj = int(rOpts.OomScoreAdj)$/\1createConfig.HostConfig.OomScoreAdj = int(rOpts.OomScoreAdj)\n\1if createConfig.HostConfig.OomScoreAdj < 0 { createConfig.HostConfig.OomScoreAdj = 0 } \/\/ tisbench/' \
    pkg/kubelet/dockershim/helpers_linux.go
grep -q "tisbench" pkg/kubelet/dockershim/docker_sandbox.go
grep -q "tisbench" pkg/kubelet/dockershim/helpers_linux.go

say "building kube-apiserver, controller-manager, scheduler, kubelet (about 19 min cold on 2 cores)"
start=$(date +%s)
GOPROXY=off CGO_ENABLED=0 KUBE_GIT_VERSION=$VERSION KUBE_GIT_TREE_STATE=clean \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet" >"$CACHE/build.log" 2>&1 \
    || { say "build failed; its log: $CACHE/build.log"; tail -n 20 "$CACHE/build.log"; exit 1; }
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
    cp "_output/bin/$b" "$BIN/$b"
done
say "built in $(( $(date +%s) - start )) s"

say "compiling the pod sandbox's pause binary"
gcc -Os -static -o "$BIN/pause" build/pause/linux/pause.c

say "removing the source tree and Go cache (about 2.6 GB)"
cd "$CACHE"
rm -rf "$WORK"
go clean -cache >/dev/null 2>&1 || true
say "Kubernetes $VERSION binaries cached in $BIN"
