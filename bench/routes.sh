#!/usr/bin/env bash
# Route lookup: kinfra and nginx with 10 and with 10,000 path-prefix routes, side by side.
#
# Each proxy runs one worker pinned to CPU 0 in front of the same upstream (nginx answering
# 1 KiB on CPU 1, with wrk). The request matches the route written last (`/r9999/x` of 10,000,
# `/r9/x` of 10). Runs are interleaved and medians reported, as ratios of 10,000 to 10 routes.
# Also kinfra's time from start to listening and for a reload, with 10 and 10,000 routes.
#
# SHAPE=hosts: host routes instead, half exact (`hN.example`) and half wildcards (`*.wN.example`),
# each nginx name its own server block; the request matches the wildcard written last.
#
#   bench/routes.sh                    (about 3 minutes)
#   ROUNDS=1 DURATION=3 bench/routes.sh
#   SHAPE=hosts bench/routes.sh
#
# Output: a Markdown table on stdout and in bench/results/routes.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
SHAPE=${SHAPE:-paths}
case $SHAPE in paths | hosts) ;; *) echo "SHAPE is paths or hosts" >&2; exit 2 ;; esac

scripts/install-deps.sh --bench >/dev/null
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFRA_BUILD_TESTS=OFF >/dev/null
cmake --build build/release --target kinfra >/dev/null
KINFRA_BIN=$(pwd)/build/release/bin/kinfra

WORK=$(mktemp -d /tmp/kinfra-routes-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. bench/lib.sh  # free_port, wait_port, write_upstream_conf
now_ms() { date +%s%3N; }

UP=$(free_port)
write_upstream_conf "$WORK/up" "$UP"
taskset -c 1 nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_port "$UP"

# routes.yaml and nginx.conf with N routes; the request path matches the last one.
write_configs() {  # n port-kinfra port-nginx
  local n=$1 kp=$2 np=$3
  {
    echo "listen: 127.0.0.1:$kp"
    echo "admin_listen: off"
    echo "workers: 1"
    echo "services:"
    echo "  app: { url: \"http://127.0.0.1:$UP\", health: off }"
    echo "routes:"
    if [ "$SHAPE" = hosts ]; then
      for ((i = 0; i < n / 2; i++)); do
        echo "  - { host: h$i.example, path: /, service: app }"
        echo "  - { host: \"*.w$i.example\", path: /, service: app }"
      done
    else
      for ((i = 0; i < n; i++)); do echo "  - { path: /r$i/x, service: app }"; done
    fi
  } >"$WORK/kinfra-$n.yaml"
  mkdir -p "$WORK/ng-$n/logs" "$WORK/ng-$n/tmp"
  {
    echo "worker_processes 1; error_log $WORK/ng-$n/logs/error.log; pid $WORK/ng-$n/nginx.pid;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_requests 1000000;"
    echo "  client_body_temp_path $WORK/ng-$n/tmp; proxy_temp_path $WORK/ng-$n/tmp;"
    echo "  fastcgi_temp_path $WORK/ng-$n/tmp; uwsgi_temp_path $WORK/ng-$n/tmp; scgi_temp_path $WORK/ng-$n/tmp;"
    echo "  upstream backend { server 127.0.0.1:$UP; keepalive 1024; }"
    local pass='proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";'
    if [ "$SHAPE" = hosts ]; then
      echo "  server_names_hash_max_size 65536; server_names_hash_bucket_size 128;"
      for ((i = 0; i < n / 2; i++)); do
        echo "  server { listen 127.0.0.1:$np; server_name h$i.example; location / { $pass } }"
        echo "  server { listen 127.0.0.1:$np; server_name *.w$i.example; location / { $pass } }"
      done
      echo "}"
    else
      echo "  server { listen 127.0.0.1:$np;"
      for ((i = 0; i < n; i++)); do echo "    location /r$i/x { $pass }"; done
      echo "  } }"
    fi
  } >"$WORK/ng-$n/nginx.conf"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
declare -A KPORT NPORT STARTUP RELOAD
for n in 10 10000; do
  KPORT[$n]=$(free_port); NPORT[$n]=$(free_port)
  write_configs "$n" "${KPORT[$n]}" "${NPORT[$n]}"
  t0=$(now_ms)
  taskset -c 0 "$KINFRA_BIN" run "$WORK/kinfra-$n.yaml" --log-level warn --ready-file "$WORK/ready-$n.json" &
  PIDS+=($!)
  while [ ! -f "$WORK/ready-$n.json" ]; do sleep 0.002; done
  STARTUP[$n]=$(($(now_ms) - t0))
  echo "# a change" >>"$WORK/kinfra-$n.yaml"
  t0=$(now_ms)
  curl -s -o /dev/null -X POST "http://127.0.0.1:${KPORT[$n]}/__action__/reload"
  RELOAD[$n]=$(($(now_ms) - t0))
  taskset -c 0 nginx -p "$WORK/ng-$n" -c "$WORK/ng-$n/nginx.conf" -g 'daemon off;' &
  PIDS+=($!)
  wait_port "${NPORT[$n]}" || true
  echo "kinfra with $n routes: listening after ${STARTUP[$n]} ms, a reload took ${RELOAD[$n]} ms" >&2
done

run_wrk() {  # proxy n round
  local port path out rps
  if [ "$1" = kinfra ]; then port=${KPORT[$2]}; else port=${NPORT[$2]}; fi
  if [ "$SHAPE" = hosts ]; then
    out=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" -H "Host: www.w$(($2 / 2 - 1)).example" "http://127.0.0.1:$port/item" 2>&1)
  else
    out=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/r$(($2 - 1))/x/item" 2>&1)
  fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$1 with $2 routes gave non-2xx answers: the run is not valid" >&2
    exit 1
  fi
  printf '%s\t%s\t%s\n' "$1" "$2" "$rps" >>"$RESULTS"
  printf '  %-7s %6s routes, round %s: %10s req/s\n' "$1" "$2" "$3" "$rps" >&2
}
for ((round = 1; round <= ROUNDS; round++)); do
  for p in kinfra nginx; do
    for n in 10 10000; do run_wrk "$p" "$n" "$round"; done
  done
done

median() { sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
med() { awk -F'\t' -v p="$1" -v n="$2" '$1==p && $2==n {print $3}' "$RESULTS" | median; }
mkdir -p bench/results
{
  echo "## Route lookup: 10 vs 10,000 $([ "$SHAPE" = hosts ] && echo "host routes (half exact, half wildcards)" || echo "path-prefix routes") ($(date -u +%Y-%m-%d), $ROUNDS rounds of ${DURATION}s, 64 connections, one worker)"
  echo
  echo "| proxy | req/s, 10 routes | req/s, 10,000 routes | 10,000 / 10 |"
  echo "|---|---:|---:|---:|"
  for p in kinfra nginx; do
    a=$(med "$p" 10); b=$(med "$p" 10000)
    printf '| %s | %.0f | %.0f | %.2f |\n' "$p" "$a" "$b" "$(echo "$b / $a" | bc -l)"
  done
  echo
  echo "kinfra from start to listening: ${STARTUP[10]} ms with 10 routes, ${STARTUP[10000]} ms with 10,000;"
  echo "a reload (POST /__action__/reload after an edit): ${RELOAD[10]} ms and ${RELOAD[10000]} ms."
} | tee "bench/results/routes$([ "$SHAPE" = hosts ] && echo -hosts).md"
