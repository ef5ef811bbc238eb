#!/usr/bin/env bash
# kinfra's admin surface under load: GET /__status__ with 100 services on one worker.
#
# kinfra runs `workers: 1` with 100 watched services (health checks off, nothing managed), no
# routes, access log and the direct admin listener off, pinned to CPU 0 with all its threads (the
# worker and the 2-thread control pool). wrk (-t1 -c16) runs on CPU 1 against:
#   /__status__                 the whole document (~33 KB with 100 services)
#   /__status__?service=svc050  the same document with svc050 selected
#   /kinfra                     the dashboard page (rendered on the control pool, off the worker)
# As a reference in the same run, nginx (one worker process, no master, also on CPU 0) serves the
# very bytes kinfra returned for /__status__ and /kinfra as static files (sendfile, open_file_cache).
# Rounds are interleaved; medians reported, with kinfra / nginx ratios.
#
#   bench/admin_status.sh                      ROUNDS=3 DURATION=5 (about 1.5 minutes)
#   ROUNDS=1 DURATION=3 bench/admin_status.sh  a quick look
#   SECTIONS=admin bench/run.sh                the same, from the main suite
#
# Output: a Markdown table on stdout and in bench/results/admin.md (progress on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
SERVICES=${SERVICES:-100}
CONNECTIONS=${CONNECTIONS:-16}

# bench/run.sh passes the binary it built; alone, build it the same way.
if [ -z "${KINFRA_BIN:-}" ]; then
  scripts/install-deps.sh --bench
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFRA_BUILD_TESTS=OFF >/dev/null
  cmake --build build/release --target kinfra >/dev/null
  KINFRA_BIN=$ROOT/build/release/bin/kinfra
fi

WORK=$(mktemp -d /tmp/kinfra-bench-admin-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

. bench/lib.sh  # free_port, wait_port
wait_url() {
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.05
  done
  echo "no 200 from $1" >&2
  return 1
}
to_ms() {  # wrk latency like 1.23ms / 456.00us / 1.20s -> ms
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v+0 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000 } else print v }'
}
median() { sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
cpu_ticks() {  # utime + stime of one process, all its threads (fields 14 and 15 of /proc/PID/stat)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

KI=$(free_port); NG=$(free_port)

# --- kinfra: one worker, SERVICES watched services, nothing else ---------------------------------
{
  echo "listen: 127.0.0.1:$KI"
  echo "workers: 1"
  echo "access_log: off"
  echo "admin_listen: off"
  echo "routes: []"
  echo "services:"
  for i in $(seq 0 $((SERVICES - 1))); do
    printf '  svc%03d: { url: "http://127.0.0.1:1", health: off }\n' "$i"
  done
} >"$WORK/kinfra.yaml"
taskset -c 0 "$KINFRA_BIN" run "$WORK/kinfra.yaml" --log-level warn &
KINFRA_PID=$!; PIDS+=($KINFRA_PID)
wait_url "http://127.0.0.1:$KI/__status__"

# The bytes nginx will serve: exactly what kinfra answered.
mkdir -p "$WORK/ng"/{logs,tmp,html}
curl -sf -o "$WORK/ng/html/status.json" "http://127.0.0.1:$KI/__status__"
curl -sf -o "$WORK/ng/html/dashboard.html" "http://127.0.0.1:$KI/kinfra"
STATUS_BYTES=$(stat -c %s "$WORK/ng/html/status.json")
PAGE_BYTES=$(stat -c %s "$WORK/ng/html/dashboard.html")
SELECTED=$(curl -sf "http://127.0.0.1:$KI/__status__?service=svc050" | python3 -c 'import json,sys; print(json.load(sys.stdin)["service_name"])')
[ "$SELECTED" = svc050 ] || { echo "/__status__?service=svc050 selected '$SELECTED'" >&2; exit 1; }
echo "kinfra /__status__: $STATUS_BYTES bytes with $SERVICES services; /kinfra: $PAGE_BYTES bytes" >&2

cat >"$WORK/ng/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
error_log $WORK/ng/logs/error.log;
pid $WORK/ng/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/ng/tmp; proxy_temp_path $WORK/ng/tmp; fastcgi_temp_path $WORK/ng/tmp;
  uwsgi_temp_path $WORK/ng/tmp; scgi_temp_path $WORK/ng/tmp;
  keepalive_requests 1000000;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16 inactive=60s;
  types { }
  server {
    listen 127.0.0.1:$NG backlog=4096;
    add_header Cache-Control no-store;
    add_header X-Content-Type-Options nosniff;
    location = /__status__ { default_type application/json; alias $WORK/ng/html/status.json; }
    location = /kinfra { default_type "text/html; charset=utf-8"; alias $WORK/ng/html/dashboard.html; }
  }
}
EOF
taskset -c 0 nginx -p "$WORK/ng" -c "$WORK/ng/nginx.conf" &
NGINX_PID=$!; PIDS+=($NGINX_PID)
wait_url "http://127.0.0.1:$NG/__status__"
cmp -s <(curl -s "http://127.0.0.1:$NG/__status__") "$WORK/ng/html/status.json" \
  || { echo "nginx does not serve the saved document" >&2; exit 1; }

# --- measure ------------------------------------------------------------------------------------
# name server path
TARGETS=(
  "status kinfra /__status__"
  "service kinfra /__status__?service=svc050"
  "page kinfra /kinfra"
  "nginx-status nginx /__status__"
  "nginx-page nginx /kinfra"
)
declare -A PORT=([kinfra]=$KI [nginx]=$NG)
declare -A PID_OF=([kinfra]=$KINFRA_PID [nginx]=$NGINX_PID)

RESULTS=$WORK/admin.tsv
: >"$RESULTS"
run_wrk() {  # name server path round
  local out rps p50 p99 reqs before after cpu errors
  before=$(cpu_ticks "${PID_OF[$2]}")
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$2]}$3" 2>&1)
  after=$(cpu_ticks "${PID_OF[$2]}")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  cpu=$(awk -v t=$((after - before)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$4" "$rps" "$p50" "$p99" "$cpu" >>"$RESULTS"
  printf '  %-7s %-28s round %s: %9s req/s  p50 %6s ms  p99 %6s ms  %6s CPU µs/req %s\n' \
    "$2" "$3" "$4" "$rps" "$p50" "$p99" "$cpu" "$errors" >&2
}

echo "warming up" >&2
for t in "${TARGETS[@]}"; do
  read -r _ server path <<<"$t"
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d1s "http://127.0.0.1:${PORT[$server]}$path" >/dev/null
done

echo "admin surface: $ROUNDS rounds x ${DURATION}s, wrk -t1 -c$CONNECTIONS, interleaved" >&2
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    read -r name server path <<<"$t"
    run_wrk "$name" "$server" "$path" "$r"
  done
done

# --- report -------------------------------------------------------------------------------------
med() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$RESULTS" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mkdir -p bench/results
{
  echo "Run: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')),"
  echo "kinfra $("$KINFRA_BIN" --version | awk '{print $2}'), $(nginx -v 2>&1 | sed 's/.*: //'), $SERVICES services, workers: 1,"
  echo "wrk -t1 -c$CONNECTIONS, $ROUNDS rounds x ${DURATION}s, medians."
  echo
  echo "| request | served by | bytes | req/s | p50 | p99 | CPU µs/req |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  row() {  # name label server bytes
    echo "| $2 | $3 | $4 | $(printf '%.0f' "$(med "$1" 3)") | $(med "$1" 4) ms | $(med "$1" 5) ms | $(med "$1" 6) |"
  }
  row status '`/__status__`' kinfra "$STATUS_BYTES"
  row service '`/__status__?service=svc050`' kinfra "$STATUS_BYTES"
  row nginx-status '`/__status__` (static file)' nginx "$STATUS_BYTES"
  row page '`/kinfra` (dashboard page)' kinfra "$PAGE_BYTES"
  row nginx-page '`/kinfra` (static file)' nginx "$PAGE_BYTES"
  echo
  echo "Ratios kinfra / nginx (req/s: higher is better; p99 and CPU: lower is better):"
  echo
  for pair in "status nginx-status /__status__" "service nginx-status /__status__?service=svc050" "page nginx-page /kinfra"; do
    read -r k n label <<<"$pair"
    echo "- \`$label\`: req/s $(ratio "$(med "$k" 3)" "$(med "$n" 3)"), p99 $(ratio "$(med "$k" 5)" "$(med "$n" 5)"), CPU per request $(ratio "$(med "$k" 6)" "$(med "$n" 6)")"
  done
} | tee bench/results/admin.md
