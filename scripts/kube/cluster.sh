#!/usr/bin/env bash
# The project's local Kubernetes 1.20.2 test cluster: etcd, kube-apiserver, controller-manager,
# scheduler and a kubelet driving the local Docker engine, all on loopback with TLS.
#
#   scripts/kube/cluster.sh start [DIR]   start it (certificates, data, logs, pids and kubeconfig in DIR)
#   scripts/kube/cluster.sh stop [DIR]    stop what start started, by pid in reverse order, remove its pod
#                                         containers, unmount the kubelet's mounts, put back the host's state
#
# Binaries come from scripts/kube/build.sh (cached). Nothing here touches the host's iptables
# (no kube-proxy; the kubelet's own chains are off), collects images (image GC thresholds at 100 %),
# or reaches beyond this machine. DIR defaults to /tmp/tisbench-kube; DIR/kubeconfig is the admin's.
# What the 1.20 kubelet changes on the host regardless of its flags is put back by stop: the kernel
# tunables it "fixes" (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, ...) and the
# hard-coded folders it makes (/var/lib/kubelet/device-plugins, /var/log/pods, /var/log/containers):
# start records them in DIR/host before the kubelet runs.
set -euo pipefail

CACHE="${TISBENCH_KUBE_CACHE:-$HOME/.cache/tisbench/kube}"
BIN="$CACHE/v1.20.2/bin"
DIR="$(realpath -m "${2:-${TISBENCH_KUBE_DIR:-/tmp/tisbench-kube}}")"
ETCD_PORT="${TISBENCH_KUBE_ETCD_PORT:-23790}"
API_PORT="${TISBENCH_KUBE_API_PORT:-16443}"
PAUSE_IMAGE=tisbench-kube/pause:3.2
SERVICE_RANGE=10.0.0.0/24
FIRST_SERVICE_IP=10.0.0.1
# Labels the kubelet puts on every pod container (sandbox and app): this cluster's are the ones whose
# pod UID has a folder under DIR/kubelet/pods.
POD_LABEL=io.kubernetes.pod.namespace
POD_UID_LABEL=io.kubernetes.pod.uid
# The kubelet sets these (container_manager_linux.go setupKernelTunables, and the no-op network
# plugin's bridge-nf-call) whatever its flags say; stop writes back what they were before start.
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys
    kernel/keys/root_maxbytes net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables)
# Folders the kubelet makes at fixed paths (device-plugin socket, pod and container log links).
HOST_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers)
say() { echo "kube-cluster: $*"; }

certificates() {
    local pki="$DIR/pki"
    mkdir -p "$pki"
    [ -f "$pki/admin.crt" ] && return 0
    say "making certificates (CA, apiserver, admin, node, service accounts) in $pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=tisbench-kube-ca" \
        -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    issue() {  # name subject [subjectAltName]
        openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
        local ext="$pki/$1.ext"
        : >"$ext"
        [ -n "${3:-}" ] && echo "subjectAltName=$3" >"$ext"
        openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
            -days 30 -extfile "$ext" -out "$pki/$1.crt" 2>/dev/null
    }
    issue apiserver "/CN=kube-apiserver" "IP:127.0.0.1,DNS:localhost,IP:$FIRST_SERVICE_IP,DNS:kubernetes.default.svc"
    issue admin "/O=system:masters/CN=admin"
    issue node "/O=system:nodes/CN=system:node:localhost"
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

kubeconfig() {  # file user
    cat >"$1" <<CFG
apiVersion: v1
kind: Config
clusters:
- name: tisbench-kube
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $DIR/pki/$2.crt
    client-key: $DIR/pki/$2.key
contexts:
- name: tisbench-kube
  context: {cluster: tisbench-kube, user: $2}
current-context: tisbench-kube
CFG
}

pause_image() {
    docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 && return 0
    say "importing the pod sandbox image $PAUSE_IMAGE (the static pause binary)"
    local tmp
    tmp="$(mktemp -d)"
    cp "$BIN/pause" "$tmp/pause"
    tar -C "$tmp" -cf "$tmp/pause.tar" pause
    docker import --change 'ENTRYPOINT ["/pause"]' \
        --change 'LABEL io.tisbench.kube=pause' "$tmp/pause.tar" "$PAUSE_IMAGE" >/dev/null
    rm -rf "$tmp"
}

launch() {  # name argv...
    local name="$1"
    shift
    "$@" >"$DIR/logs/$name.log" 2>&1 &
    echo $! >"$DIR/pids/$name"
}

wait_for() {  # what seconds process command...: until command succeeds, while process (a pids/ name) lives
    local what="$1" seconds="$2" process="$3" start
    shift 3
    start=$(date +%s)
    until "$@" >/dev/null 2>&1; do
        if [ -z "$(live_pid "$process")" ]; then
            say "$process exited; its log: $DIR/logs/$process.log"
            return 1
        fi
        if (( $(date +%s) - start > seconds )); then
            say "$what not ready after ${seconds} s; logs in $DIR/logs"
            return 1
        fi
        sleep 0.5
    done
    say "$what ready after $(( $(date +%s) - start )) s"
}

# The pid in DIR/pids/NAME when that process is still alive and still runs NAME's binary (a pid
# the system has since given to another program is never ours to signal); empty otherwise.
live_pid() {  # name
    local pid exe
    [ -f "$DIR/pids/$1" ] || return 0
    pid="$(cat "$DIR/pids/$1")"
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    [ -n "$exe" ] && [ "$(basename "${exe% (deleted)}")" = "$1" ] && echo "$pid"
    return 0
}

running() {
    [ -n "$(live_pid kube-apiserver)" ]
}

# Alive and not a zombie: the processes outlive start's shell, so an exited one waits for whoever
# reaps orphans here (seconds, on this machine) and `kill -0` alone would still find it.
alive() {  # pid
    local state
    state="$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true)"
    [ -n "$state" ] && [ "$state" != Z ]
}

# Before the kubelet's first start in DIR: the kernel tunables it may rewrite and which of its
# fixed host folders do not exist yet (only those are removed again by stop).
record_host() {
    local key dir
    mkdir -p "$DIR/host"
    if [ ! -f "$DIR/host/sysctl" ]; then
        for key in "${SYSCTLS[@]}"; do
            [ -r "/proc/sys/$key" ] && echo "$key=$(cat "/proc/sys/$key")"
        done >"$DIR/host/sysctl.tmp"
        mv "$DIR/host/sysctl.tmp" "$DIR/host/sysctl"
    fi
    if [ ! -f "$DIR/host/created" ]; then
        for dir in "${HOST_DIRS[@]}"; do [ -e "$dir" ] || echo "$dir"; done >"$DIR/host/created"
    fi
}

restore_host() {
    local key value dir uids=("$@") uid link
    if [ -f "$DIR/host/sysctl" ]; then
        while IFS='=' read -r key value; do
            [ -n "$key" ] && [ -w "/proc/sys/$key" ] || continue
            if [ "$(cat "/proc/sys/$key")" != "$value" ]; then
                echo "$value" 2>/dev/null >"/proc/sys/$key" && say "restored ${key//\//.} = $value" \
                    || say "could not restore ${key//\//.} to $value"
            fi
        done <"$DIR/host/sysctl"
        rm -f "$DIR/host/sysctl"
    fi
    # This cluster's pod log folders (/var/log/pods/NS_POD_UID) and the container log links into them.
    local target
    for link in /var/log/containers/*.log; do
        [ -L "$link" ] || continue
        target="$(readlink "$link")"
        for uid in "${uids[@]}"; do
            case "$target" in /var/log/pods/*_"$uid"/*) rm -f "$link" ;; esac
        done
    done
    for uid in "${uids[@]}"; do
        rm -rf /var/log/pods/*_"$uid"
    done
    if [ -f "$DIR/host/created" ]; then
        while read -r dir; do
            case "$dir" in
                /var/lib/kubelet) rm -rf /var/lib/kubelet ;;  # only the device-plugin socket and checkpoint
                /var/log/pods|/var/log/containers) rmdir "$dir" 2>/dev/null || true ;;  # only when empty
            esac
        done <"$DIR/host/created"
        rm -f "$DIR/host/created"
    fi
}

start() {
    for b in kube-apiserver kube-controller-manager kube-scheduler kubelet pause; do
        [ -x "$BIN/$b" ] || { say "$BIN/$b is missing: run scripts/kube/build.sh"; exit 3; }
    done
    if running; then
        say "already running (kubeconfig: $DIR/kubeconfig)"
        return 0
    fi
    local name
    for name in etcd kube-controller-manager kube-scheduler kubelet; do
        if [ -n "$(live_pid "$name")" ]; then
            say "what is left of an earlier start in $DIR runs without its apiserver: stopping it first"
            stop
            break
        fi
    done
    mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/etcd" "$DIR/kubelet" "$DIR/dockershim" "$DIR/volume-plugins"
    certificates
    kubeconfig "$DIR/kubeconfig" admin
    kubeconfig "$DIR/node.kubeconfig" node
    pause_image
    local pki="$DIR/pki"
    say "starting etcd on 127.0.0.1:$ETCD_PORT"
    launch etcd etcd --data-dir "$DIR/etcd" --name tisbench-kube \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
        --initial-cluster "tisbench-kube=http://127.0.0.1:$((ETCD_PORT + 10))"
    say "starting kube-apiserver on https://127.0.0.1:$API_PORT"
    launch kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
        --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --service-account-issuer https://kubernetes.default.svc \
        --service-cluster-ip-range "$SERVICE_RANGE" --endpoint-reconciler-type none \
        --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
        --kubelet-preferred-address-types Hostname --allow-privileged=false
    wait_for "kube-apiserver" 60 kube-apiserver curl -sf --max-time 3 --cacert "$pki/ca.crt" \
        --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$API_PORT/readyz" || failed
    say "starting kube-controller-manager and kube-scheduler (no ports of their own)"
    launch kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$DIR/kubeconfig" \
        --port 0 --secure-port 0 --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
        --leader-elect=false --controllers '*,-nodeipam,-cloud-node-lifecycle' \
        --flex-volume-plugin-dir "$DIR/volume-plugins"
    launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$DIR/kubeconfig" --port 0 --secure-port 0 \
        --leader-elect=false
    record_host
    say "starting the kubelet on the local Docker engine (node localhost)"
    # Its API (exec, logs, port-forward) answers only clients with a certificate from this CA; its
    # own OOM score is left alone (this sandbox refuses lowering it, and the host's is not ours).
    launch kubelet "$BIN/kubelet" --kubeconfig "$DIR/node.kubeconfig" --container-runtime docker \
        --hostname-override localhost --root-dir "$DIR/kubelet" --cert-dir "$DIR/kubelet/pki" \
        --address 127.0.0.1 --read-only-port 0 --healthz-bind-address 127.0.0.1 \
        --anonymous-auth=false --client-ca-file "$pki/ca.crt" --authorization-mode AlwaysAllow \
        --experimental-dockershim-root-directory "$DIR/dockershim" --volume-plugin-dir "$DIR/volume-plugins" \
        --oom-score-adj 0 --pod-infra-container-image "$PAUSE_IMAGE" \
        --image-gc-high-threshold 100 --image-gc-low-threshold 99 --make-iptables-util-chains=false \
        --cgroups-per-qos=false --enforce-node-allocatable= --fail-swap-on=false --cgroup-driver cgroupfs \
        --eviction-hard 'memory.available<50Mi,nodefs.available<1%,imagefs.available<1%' \
        --serialize-image-pulls=false --register-node=true
    wait_for "node localhost" 120 kubelet node_ready || failed
    say "running; KUBECONFIG=$DIR/kubeconfig"
}

node_ready() {
    [ "$(kubectl --kubeconfig "$DIR/kubeconfig" --request-timeout=5s get node localhost \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

failed() {
    local log
    for log in "$DIR"/logs/*.log; do
        [ -s "$log" ] || continue
        echo "--- $log (last 10 lines)" >&2
        tail -n 10 "$log" >&2
    done
    say "start failed: stopping what did start (logs stay in $DIR/logs)"
    stop
    exit 1
}

# The pod UIDs this cluster's kubelet has folders for: its pods, live or left behind.
pod_uids() {
    # This cluster's pods: those with a folder under its kubelet's root, and those whose containers
    # mount from that root (a deleted pod's folder goes at once; its dead containers stay until GC).
    local ids
    {
        [ -d "$DIR/kubelet/pods" ] && find "$DIR/kubelet/pods" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'
        mapfile -t ids < <(docker ps -aq --filter "label=$POD_LABEL" 2>/dev/null || true)
        if [ "${#ids[@]}" -gt 0 ]; then
            docker inspect --format "{{ index .Config.Labels \"$POD_UID_LABEL\" }} {{ range .Mounts }}{{ .Source }} {{ end }}" \
                "${ids[@]}" 2>/dev/null \
                | awk -v root="$DIR/kubelet/" '{ for (i = 2; i <= NF; i++) if (index($i, root) == 1) { print $1; break } }'
        fi
    } | sort -u
}

stop() {
    local name pid
    for name in kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
        pid="$(live_pid "$name")"
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
            if alive "$pid"; then
                kill -9 "$pid" 2>/dev/null || true
                say "killed $name (pid $pid; it ignored SIGTERM for 10 s)"
            else
                say "stopped $name (pid $pid)"
            fi
        fi
        rm -f "$DIR/pids/$name"
    done
    # The kubelet is gone: remove the pod containers (sandboxes and app containers) it made.
    local uids uid containers=()
    mapfile -t uids < <(pod_uids)
    for uid in "${uids[@]}"; do
        mapfile -t -O "${#containers[@]}" containers < <(docker ps -aq --filter "label=$POD_LABEL" \
            --filter "label=$POD_UID_LABEL=$uid" 2>/dev/null || true)
    done
    if [ "${#containers[@]}" -gt 0 ]; then
        say "removing ${#containers[@]} pod container(s) of $(echo "${uids[*]}" | wc -w) pod(s)"
        docker rm -f "${containers[@]}" >/dev/null \
            || say "docker rm -f did not remove them all: see docker ps -a --filter label=$POD_LABEL"
    fi
    # Then the kubelet's mounts under DIR (secret tmpfs, and its root folder bound onto itself), deepest first.
    local mount
    awk -v d="$DIR" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r | while read -r mount; do
        umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || say "could not unmount $mount"
    done
    restore_host "${uids[@]}"
    return 0
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
