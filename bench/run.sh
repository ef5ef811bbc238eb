#!/usr/bin/env bash
# kinfra vs nginx vs HAProxy, side by side in one run.
#
# Every proxy runs one worker thread pinned to CPU 0, with upstream keep-alive on and access logs
# off, in front of the same small upstream (nginx answering 1 KiB, pinned to CPU 1 with the load
# generator). Runs are interleaved (kinfra, nginx, haproxy, kinfra, ...) and medians reported.
#
# The HTTPS part terminates TLS in each proxy (TLS 1.3, one ECDSA P-256 certificate, the same
# upstream over plain HTTP) and measures keep-alive req/s and new connections per second, where
# every request opens a connection with a full handshake (Connection: close).
#
# The h2 part runs h2load over TLS (ALPN h2) against a third listener of each proxy (the same
# certificate; nginx `listen ... ssl http2`, HAProxy `alpn h2,http/1.1`, kinfra's TLS listener
# with its default `http2: true`), so the HTTPS listeners above stay exactly as they were.
# Streams go to the same upstream over HTTP/1.1 keep-alive. It measures 1 connection x 10
# streams and 64 connections x 10 streams (req/s, CPU µs/request, p50/p99 from h2load's
# per-request log), new HTTP/2 connections per second (one request on each, full handshake)
# with CPU µs per connection, and RSS while the 64 connections run and after. h2instr counts
# callgrind instructions per HTTP/2 request and per new HTTP/2 connection.
#
#   bench/run.sh                   full run (about 18 minutes)
#   ROUNDS=1 DURATION=3 bench/run.sh   a quick look
#   SECTIONS="https" bench/run.sh  only some parts: http, https, h2, idle, tlsidle, cpu, instr, h2instr, admin
#   KEEP_WORK=1 bench/run.sh       keeps the work directory (callgrind files for callgrind_annotate)
#   bench/run.sh admin             the same, sections as arguments
#   ACCESS_LOG=1 bench/run.sh      kinfra and nginx writing access logs (to files)
#
# The idle part holds IDLE_CONNECTIONS (8,000; HAProxy needs two descriptors per connection
# and the hard limit may be 20,000) keep-alive connections, each after one request,
# and reads how much each proxy's RSS grew: memory per idle connection.
#
# The admin part (bench/admin_status.sh, which also runs alone) measures kinfra's own
# GET /__status__ with 100 services on one worker, and the /kinfra dashboard page, against nginx
# serving the same bytes as static files.
#
# Output: a Markdown table on stdout and in bench/results/latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
# ACCESS_LOG=1: kinfra and nginx write a combined-format access log to a file (HAProxy's goes
# through syslog, so it stays off); by default all three log nothing.
ACCESS_LOG=${ACCESS_LOG:-0}
CPU_REQUESTS=${CPU_REQUESTS:-200000}
CG_N1=${CG_N1:-2000}
CG_N2=${CG_N2:-12000}
# h2instr: requests over CG_H2_CONNS connections (10 streams each), then new connections in
# batches of CG_H2_BATCH (one request each): CG_H2_C1 vs CG_H2_C2 connections.
CG_H2_N1=${CG_H2_N1:-2000}
CG_H2_N2=${CG_H2_N2:-12000}
CG_H2_CONNS=${CG_H2_CONNS:-8}
CG_H2_C1=${CG_H2_C1:-100}
CG_H2_C2=${CG_H2_C2:-600}
CG_H2_BATCH=${CG_H2_BATCH:-20}
H2_STREAMS=${H2_STREAMS:-10}
PROXIES=(kinfra nginx haproxy)
SECTIONS=${SECTIONS:-http https h2 idle tlsidle cpu instr h2instr admin}
[ $# -gt 0 ] && SECTIONS="$*"
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-8000}
has_section() { [[ " $SECTIONS " == *" $1 "* ]]; }

scripts/install-deps.sh --bench
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFRA_BUILD_TESTS=OFF >/dev/null
cmake --build build/release --target kinfra >/dev/null
KINFRA_BIN=$ROOT/build/release/bin/kinfra

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d /tmp/kinfra-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "raw files (callgrind output, configurations) kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The admin surface runs first, on its own (its kinfra and nginx, killed when it ends).
if has_section admin; then
  KINFRA_BIN=$KINFRA_BIN ROUNDS=$ROUNDS DURATION=$DURATION bench/admin_status.sh >"$WORK/admin.md"
  if [ -z "$(tr ' ' '\n' <<<"$SECTIONS" | grep -vx -e admin -e '')" ]; then
    mkdir -p bench/results
    tee bench/results/latest.md <"$WORK/admin.md"
    exit 0
  fi
fi

. bench/lib.sh  # free_port, wait_port, write_upstream_conf
wait_tcp() {  # a port that accepts connections (a TLS listener, where curl http:// would not do)
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

UP=$(free_port); KI=$(free_port); NG=$(free_port); HA=$(free_port)
KS=$(free_port); NS=$(free_port); HS=$(free_port)
KH=$(free_port); NH=$(free_port); HH=$(free_port)
declare -A PORT=([kinfra]=$KI [nginx]=$NG [haproxy]=$HA)
declare -A TLS_PORT=([kinfra]=$KS [nginx]=$NS [haproxy]=$HS)
# HTTPS listeners that offer h2 by ALPN (then http/1.1): the h2 and h2instr parts.
declare -A H2_PORT=([kinfra]=$KH [nginx]=$NH [haproxy]=$HH)

# One certificate for every proxy's HTTPS listener (HAProxy wants certificate and key in one file).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -keyout "$WORK/bench.key" -out "$WORK/bench.crt" 2>/dev/null
cat "$WORK/bench.crt" "$WORK/bench.key" >"$WORK/bench.pem"

# --- configurations -----------------------------------------------------------------------------
if [ "$ACCESS_LOG" = 1 ]; then
  NG_LOG="access_log $WORK/ng/logs/access.log combined;"
  KI_LOG="access_log: $WORK/kinfra-access.log"
else
  NG_LOG="access_log off;"
  KI_LOG="access_log: off"
fi
mkdir -p "$WORK"/ng/{logs,tmp}
write_upstream_conf "$WORK/up" "$UP"

nginx_proxy_conf() {  # $1: extra main-context lines
  cat <<EOF
worker_processes 1;
$1
error_log $WORK/ng/logs/error.log;
pid $WORK/ng/nginx.pid;
events { worker_connections 16384; }
http {
  $NG_LOG
  client_body_temp_path $WORK/ng/tmp; proxy_temp_path $WORK/ng/tmp; fastcgi_temp_path $WORK/ng/tmp;
  uwsgi_temp_path $WORK/ng/tmp; scgi_temp_path $WORK/ng/tmp;
  keepalive_requests 1000000;
  # keepalive: idle upstream connections kept; 1024 like kinfra's pool, so that h2 with
  # 64 connections x 10 streams (640 requests at once) does not close any (512 would do for c512).
  upstream backend { server 127.0.0.1:$UP; keepalive 1024; keepalive_requests 1000000; }
  server {
    # One server, three listeners: plain HTTP, HTTPS and HTTPS with h2 share the proxying below.
    listen 127.0.0.1:$NG backlog=4096;
    listen 127.0.0.1:$NS ssl backlog=4096;
    listen 127.0.0.1:$NH ssl http2 backlog=4096;
    ssl_certificate $WORK/bench.crt;
    ssl_certificate_key $WORK/bench.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
    }
  }
}
EOF
}
nginx_proxy_conf "" >"$WORK/ng/nginx.conf"
nginx_proxy_conf "daemon off; master_process off;" >"$WORK/ng/nginx-single.conf"

cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 9000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:$HA
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend be
frontend fes
  bind 127.0.0.1:$HS ssl crt $WORK/bench.pem alpn http/1.1 ssl-min-ver TLSv1.2
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend be
frontend feh2
  bind 127.0.0.1:$HH ssl crt $WORK/bench.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend be
backend be
  server s1 127.0.0.1:$UP
EOF

cat >"$WORK/kinfra.yaml" <<EOF
listen:
  - 127.0.0.1:$KI
  - { address: 127.0.0.1:$KS, tls: { cert: $WORK/bench.crt, key: $WORK/bench.key } }
  - { address: 127.0.0.1:$KH, tls: { cert: $WORK/bench.crt, key: $WORK/bench.key }, http2: true }
workers: 1
$KI_LOG
routes:
  - { path: /, service: up }
services:
  up: { url: "http://127.0.0.1:$UP" }
EOF

cat >"$WORK/count.lua" <<'EOF'
-- Ends wrk after REQS responses, for measurements over a fixed request count. (thread:stop()
-- would leave wrk sleeping until -d runs out; os.exit ends it at once.)
local limit = tonumber(os.getenv("REQS"))
local n = 0
response = function(status, headers, body)
  n = n + 1
  if n >= limit then io.write("completed ", n, " requests\n"); os.exit(0) end
end
EOF

# Runs a proxy in the foreground with one worker (nginx without its master), replacing the shell.
exec_proxy() {  # proxy [wrapper...]
  local p=$1; shift
  case $p in
    kinfra) exec "$@" "$KINFRA_BIN" run "$WORK/kinfra.yaml" --log-level warn ;;
    nginx) exec "$@" nginx -p "$WORK/ng" -c "$WORK/ng/nginx-single.conf" ;;
    haproxy) exec "$@" haproxy -f "$WORK/haproxy.cfg" -db ;;
  esac
}

# --- start everything ---------------------------------------------------------------------------
taskset -c 1 nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
taskset -c 0 "$KINFRA_BIN" run "$WORK/kinfra.yaml" --log-level warn &
KINFRA_PID=$!; PIDS+=($KINFRA_PID)
taskset -c 0 nginx -p "$WORK/ng" -c "$WORK/ng/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!; PIDS+=($NGINX_PID)
taskset -c 0 haproxy -f "$WORK/haproxy.cfg" -db &
HAPROXY_PID=$!; PIDS+=($HAPROXY_PID)
for p in $UP $KI $NG $HA; do wait_port "$p"; done
for p in $KS $NS $HS $KH $NH $HH; do wait_tcp "$p"; done
declare -A MAIN_PID=([kinfra]=$KINFRA_PID [nginx]=$NGINX_PID [haproxy]=$HAPROXY_PID)

# All processes of a proxy: the main pid and its children (nginx's worker).
procs_of() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }
cpu_ticks() {  # proxy [user] -> user + system ticks of its processes (user: user time only)
  local total=0
  for p in $(procs_of "$1"); do
    [ -r "/proc/$p/stat" ] || continue
    # utime and stime are fields 14 and 15; the command name may contain spaces, so cut after ')'.
    read -r ut st < <(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
    if [ "${2:-}" = user ]; then total=$((total + ut)); else total=$((total + ut + st)); fi
  done
  echo "$total"
}
peak_rss_kib() {
  local total=0
  for p in $(procs_of "$1"); do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
rss_kib() {  # current VmRSS of a proxy's processes
  local total=0 v
  for p in $(procs_of "$1"); do
    v=$(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
to_ms() {  # wrk latency like 1.23ms / 456.00us / 1.20s -> ms
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v+0 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000 } else print v }'
}
rotated() {  # round -> the proxies, starting with a different one each round
  local n=${#PROXIES[@]} i
  for i in $(seq 0 $((n - 1))); do echo "${PROXIES[$(((i + $1) % n))]}"; done
}
# The median over rounds of kinfra's figure divided by nginx's in the same round.
# file, column of the concurrency (or ""), concurrency, column of the figure, round column
paired_ratio() {
  awk -v cc="$2" -v c="$3" -v col="$4" -v rc="$5" '($1=="kinfra" || $1=="nginx") && (cc=="" || $cc==c) {v[$1, $rc]=$col; r[$rc]=1}
    END { for (k in r) if (v["nginx", k] > 0 && v["kinfra", k] != "") print v["kinfra", k] / v["nginx", k] }' "$1" | median
}
median() { sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

RESULTS=$WORK/results.tsv
: >"$RESULTS"
run_wrk() {  # proxy conns round
  local out
  out=$(taskset -c 1 wrk -t1 -c"$2" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$1]}/" 2>&1)
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$rps" "$p50" "$p99" >>"$RESULTS"
  printf '  %-8s c=%-4s round %s: %10s req/s  p50 %7s ms  p99 %7s ms %s\n' "$1" "$2" "$3" "$rps" "$p50" "$p99" "$errors" >&2
}

TLS_RESULTS=$WORK/tls.tsv
: >"$TLS_RESULTS"
run_wrk_tls() {  # proxy mode(keepalive|handshake) round
  local extra=() out rps reqs before after cpu
  [ "$2" = handshake ] && extra=(-H "Connection: close")
  before=$(cpu_ticks "${MAIN_PID[$1]}")
  out=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "${extra[@]}" "https://127.0.0.1:${TLS_PORT[$1]}/" 2>&1)
  after=$(cpu_ticks "${MAIN_PID[$1]}")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  # The proxy's CPU time per request (per connection with handshakes): what the proxy itself
  # spends, whoever the bottleneck is (with full handshakes, the one-core client often is).
  cpu=$(awk -v t=$((after - before)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$rps" "$cpu" >>"$TLS_RESULTS"
  printf '  %-8s https %-9s round %s: %10s req/s, %7s CPU µs/req %s\n' "$1" "$2" "$3" "$rps" "$cpu" \
    "$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')" >&2
}

H2_RESULTS=$WORK/h2.tsv
: >"$H2_RESULTS"
H2_FAILURES=$WORK/h2-failures.txt
: >"$H2_FAILURES"
h2_counts() {  # h2load output file -> "done succeeded failed errored timeout non-2xx"
  # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
  # status codes: N 2xx, N 3xx, N 4xx, N 5xx
  awk '/^requests:/ {d = $6; s = $8; f = $10; e = $12; t = $14}
       /^status codes:/ {n = $5 + $7 + $9}
       END {print d + 0, s + 0, f + 0, e + 0, t + 0, n + 0}' "$1"
}
h2_check() {  # label h2load-output-file -> prints the number of bad requests; quotes the output if any
  local done ok failed errored timeouts non2xx bad
  read -r done ok failed errored timeouts non2xx < <(h2_counts "$2")
  bad=$((failed + errored + timeouts + non2xx))
  if [ "$bad" -gt 0 ] || [ "$ok" -eq 0 ] || ! grep -q '^Application protocol: h2$' "$2"; then
    { echo "=== $1: $bad failed/errored/timed out/non-2xx of $done done ($ok succeeded)"; grep -v '^progress:' "$2"; } |
      tee -a "$H2_FAILURES" >&2
    [ "$bad" -gt 0 ] || bad=1
  fi
  echo "$bad"
}
run_h2load() {  # proxy conns round
  local p=$1 c=$2 r=$3 out="$WORK/h2load.$1.c$2.r$3" log="$WORK/h2req.$1.c$2.r$3"
  local before after hp rss_mid ok rps p50 p99 mean max cpu bad
  before=$(cpu_ticks "${MAIN_PID[$p]}")
  taskset -c 1 h2load -t1 -c"$c" -m"$H2_STREAMS" -D"$DURATION" --log-file="$log" \
    "https://127.0.0.1:${H2_PORT[$p]}/" >"$out" 2>&1 &
  hp=$!
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
  rss_mid=$(rss_kib "${MAIN_PID[$p]}")
  wait "$hp" || true
  after=$(cpu_ticks "${MAIN_PID[$p]}")
  bad=$(h2_check "$p h2 c$c round $r" "$out")
  read -r _ ok _ < <(h2_counts "$out")
  rps=$(awk '/^finished in/ {print $4}' "$out")
  # h2load prints min/max/mean/sd only; the percentiles come from its per-request log
  # (start µs, status, µs until the end of the response).
  read -r p50 p99 < <(cut -f3 "$log" | sort -n | awk '{a[NR] = $1} END {
    if (NR == 0) { print "0 0"; exit }
    i = int(NR * 0.50 + 0.5); j = int(NR * 0.99 + 0.5); if (i < 1) i = 1; if (j < 1) j = 1
    printf "%.2f %.2f\n", a[i] / 1000, a[j] / 1000 }')
  read -r mean max < <(awk '/^time for request:/ {print $6, $5}' "$out") || true
  cpu=$(awk -v t=$((after - before)) -v n="$ok" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
  printf '%s\tc%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$c" "$r" "${rps:-0}" "$cpu" "$p50" "$p99" "$rss_mid" "$bad" >>"$H2_RESULTS"
  printf '  %-8s h2 c%-3s round %s: %10s req/s, %6s CPU µs/req, p50 %6s ms, p99 %6s ms (mean %s, max %s), RSS %s KiB mid-run, %s failed\n' \
    "$p" "$c" "$r" "${rps:-0}" "$cpu" "$p50" "$p99" "$mean" "$max" "$rss_mid" "$bad" >&2
  rm -f "$log"
}
run_h2_connect() {  # proxy round: new HTTP/2 connections (full handshake, one request each) for DURATION
  local p=$1 r=$2 out="$WORK/h2conn.$1.r$2" before after t0 t1 conns=0 bad=0 ok b rate cpu
  before=$(cpu_ticks "${MAIN_PID[$p]}")
  t0=$(date +%s.%N)
  while awk -v a="$t0" -v b="$(date +%s.%N)" -v d="$DURATION" 'BEGIN { exit !(b - a < d) }'; do
    # 64 clients, one request each: every one a new TCP connection, TLS handshake and h2 session.
    taskset -c 1 h2load -t1 -c64 -n64 -m1 "https://127.0.0.1:${H2_PORT[$p]}/" >"$out" 2>&1 || true
    b=$(h2_check "$p h2 new connections round $r" "$out")
    read -r _ ok _ < <(h2_counts "$out")
    conns=$((conns + ok)); bad=$((bad + b))
  done
  t1=$(date +%s.%N)
  after=$(cpu_ticks "${MAIN_PID[$p]}")
  rate=$(awk -v n="$conns" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
  cpu=$(awk -v t=$((after - before)) -v n="$conns" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
  printf '%s\tconn\t%s\t%s\t%s\t0\t0\t0\t%s\n' "$p" "$r" "$rate" "$cpu" "$bad" >>"$H2_RESULTS"
  printf '  %-8s h2 new connections round %s: %8s connections/s, %7s CPU µs/connection, %s failed\n' \
    "$p" "$r" "$rate" "$cpu" "$bad" >&2
}

echo "warming up" >&2
for p in "${PROXIES[@]}"; do taskset -c 1 wrk -t1 -c64 -d2s "http://127.0.0.1:${PORT[$p]}/" >/dev/null; done

if has_section http; then
  echo "throughput and latency: $ROUNDS rounds x ${DURATION}s, interleaved" >&2
  # Each round runs the proxies back to back at one concurrency, then at the other, starting with
  # a different one each round: this machine's speed drifts by minutes, so a ratio is taken within
  # a round (paired) as well as between medians.
  for r in $(seq 1 "$ROUNDS"); do
    for c in 64 512; do
      for p in $(rotated "$r"); do run_wrk "$p" "$c" "$r"; done
    done
  done
fi

if has_section https; then
  echo "HTTPS: keep-alive req/s and new connections/s (full handshakes), $ROUNDS rounds x ${DURATION}s" >&2
  for r in $(seq 1 "$ROUNDS"); do
    for p in "${PROXIES[@]}"; do
      run_wrk_tls "$p" keepalive "$r"
      run_wrk_tls "$p" handshake "$r"
    done
  done
fi

# kinfra holds a connection idle for over a second without its session (worker::rest_after):
# measure once every connection got there (its /metrics says so; at most 20 s).
wait_dormant() {  # proxy held
  sleep 2
  [ "$1" = kinfra ] || return 0
  local dormant
  for _ in $(seq 1 90); do
    dormant=$(curl -s "http://127.0.0.1:${PORT[$1]}/metrics" | awk '/^kinfra_connections_dormant / {print $2}')
    [ "${dormant:-0}" -ge "$2" ] && break
    sleep 0.2
  done
}

# The RSS growth of proxy $1 per connection while hold_idle.py holds $3 connections to port $2
# (over TLS with $4 = tls), read once kinfra holds them all dormant.
idle_bytes() {  # proxy port count [tls] -> bytes per connection
  local p=$1 before after held
  rss_now() { local t=0; for q in $(procs_of "${MAIN_PID[$p]}"); do
    t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$q/status" 2>/dev/null || echo 0))); done; echo "$t"; }
  before=$(rss_now)
  coproc HOLD { taskset -c 1 python3 bench/hold_idle.py "$2" "$3" ${4:-}; }
  read -r _ held <&"${HOLD[0]}"
  wait_dormant "$p" "$held"
  after=$(rss_now)
  exec {HOLD[1]}>&-
  wait "$HOLD_PID" 2>/dev/null || true
  echo "  $p: RSS $before -> $after KiB with $held idle ${4:+HTTPS }connections: $(( (after - before) * 1024 / held )) bytes each" >&2
  echo $(( (after - before) * 1024 / held ))
  sleep 1
}

declare -A IDLE_BYTES
if has_section idle; then
  echo "memory per idle keep-alive connection ($IDLE_CONNECTIONS connections)" >&2
  for p in "${PROXIES[@]}"; do IDLE_BYTES[$p]=$(idle_bytes "$p" "${PORT[$p]}" "$IDLE_CONNECTIONS"); done
fi

# The same over TLS: a connection that finished its handshake and one request, then idles (kinfra
# holds it dormant with its OpenSSL state; what each proxy keeps is its TLS state and buffers).
declare -A TLS_IDLE_BYTES
TLS_IDLE_CONNECTIONS=${TLS_IDLE_CONNECTIONS:-2000}
if has_section tlsidle; then
  echo "memory per idle HTTPS keep-alive connection ($TLS_IDLE_CONNECTIONS connections)" >&2
  for p in "${PROXIES[@]}"; do TLS_IDLE_BYTES[$p]=$(idle_bytes "$p" "${TLS_PORT[$p]}" "$TLS_IDLE_CONNECTIONS" tls); done
fi

declare -A CPU_US USER_US RSS INSTR
# CPU per request: ROUNDS runs of CPU_REQUESTS requests each, interleaved like the throughput runs.
CPU_RESULTS=$WORK/cpu.tsv
: >"$CPU_RESULTS"
has_section cpu && echo "CPU time per request, $ROUNDS rounds of $CPU_REQUESTS requests" >&2
for r in $(seq 1 "$ROUNDS"); do
  has_section cpu || break
  for p in $(rotated "$r"); do
    before=$(cpu_ticks "${MAIN_PID[$p]}"); before_user=$(cpu_ticks "${MAIN_PID[$p]}" user)
    out=$(REQS=$CPU_REQUESTS taskset -c 1 wrk -t1 -c64 -d120s -s "$WORK/count.lua" "http://127.0.0.1:${PORT[$p]}/" 2>&1)
    after=$(cpu_ticks "${MAIN_PID[$p]}"); after_user=$(cpu_ticks "${MAIN_PID[$p]}" user)
    done_reqs=$(awk '/^completed/ {print $2}' <<<"$out")
    per_request() { awk -v t="$1" -v n="$done_reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }'; }
    us=$(per_request $((after - before)))
    user_us=$(per_request $((after_user - before_user)))
    printf '%s\t%s\t%s\t%s\n' "$p" "$r" "$us" "$user_us" >>"$CPU_RESULTS"
    echo "  $p round $r: $us us/request ($user_us in user space) over $done_reqs requests" >&2
  done
done
for p in "${PROXIES[@]}"; do
  has_section cpu || break
  CPU_US[$p]=$(awk -v p="$p" '$1==p {print $3}' "$CPU_RESULTS" | median)
  USER_US[$p]=$(awk -v p="$p" '$1==p {print $4}' "$CPU_RESULTS" | median)
  RSS[$p]=$(peak_rss_kib "${MAIN_PID[$p]}")
done

# HTTP/2 after idle and cpu: the memory its 64 busy connections leave behind would otherwise be
# reused by the idle connections (less RSS growth) and show in the peak RSS of the HTTP table.
declare -A H2_RSS_BEFORE H2_RSS_AFTER
if has_section h2; then
  for p in "${PROXIES[@]}"; do H2_RSS_BEFORE[$p]=$(rss_kib "${MAIN_PID[$p]}"); done
  echo "HTTP/2 over TLS: h2load -c1 and -c64, -m$H2_STREAMS, and new connections, $ROUNDS rounds x ${DURATION}s" >&2
  for p in "${PROXIES[@]}"; do
    taskset -c 1 h2load -t1 -c64 -m"$H2_STREAMS" -D2 "https://127.0.0.1:${H2_PORT[$p]}/" >"$WORK/h2warm.$p" 2>&1 || true
    h2_check "$p h2 warm-up" "$WORK/h2warm.$p" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for p in "${PROXIES[@]}"; do
      run_h2load "$p" 1 "$r"
      run_h2load "$p" 64 "$r"
      run_h2_connect "$p" "$r"
    done
  done
  sleep 1
  for p in "${PROXIES[@]}"; do H2_RSS_AFTER[$p]=$(rss_kib "${MAIN_PID[$p]}"); done
fi

for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
sleep 0.5

has_section instr && echo "user-space instructions per request (callgrind, $CG_N1 vs $CG_N2 requests)" >&2
cg_start() {  # proxy tag: starts the proxy under callgrind (sets CG_OUT, CG_PID)
  CG_OUT="$WORK/cg.$2"
  (exec_proxy "$1" taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$CG_OUT.%p") >/dev/null 2>&1 &
  CG_PID=$!
  wait_port "${PORT[$1]}" >/dev/null
}
cg_stop() {  # proxy -> Ir total of all its processes
  local total=0 v f
  kill -TERM "$CG_PID"
  wait "$CG_PID" 2>/dev/null || true
  for f in "$CG_OUT".*; do
    [ -f "$f" ] || continue
    v=$(awk '/^(summary|totals):/ {print $2}' "$f" | tail -1)
    total=$((total + ${v:-0}))
  done
  [ "$total" -gt 0 ] || { echo "callgrind produced nothing for $1" >&2; return 1; }
  echo "$total"
}
callgrind_total() {  # proxy requests -> Ir total of all its processes
  cg_start "$1" "$1.$2"
  REQS=$2 taskset -c 1 wrk -t1 -c8 -d300s -s "$WORK/count.lua" "http://127.0.0.1:${PORT[$1]}/" >/dev/null 2>&1
  cg_stop "$1"
}
callgrind_h2_total() {  # proxy requests|connections count -> Ir total of all its processes
  local p=$1 what=$2 n=$3 out ok=0 k o
  out="$WORK/cgh2.$1.$2.$3"
  cg_start "$p" "h2.$p.$what.$n"
  wait_tcp "${H2_PORT[$p]}" >/dev/null
  if [ "$what" = requests ]; then
    taskset -c 1 h2load -t1 -c"$CG_H2_CONNS" -m"$H2_STREAMS" -n"$n" "https://127.0.0.1:${H2_PORT[$p]}/" >"$out" 2>&1 || true
    h2_check "$p h2instr $n requests" "$out" >/dev/null
    read -r _ ok _ < <(h2_counts "$out")
  else
    # In batches, so that no handshake waits for hundreds of others under valgrind.
    for k in $(seq 1 $((n / CG_H2_BATCH))); do
      taskset -c 1 h2load -t1 -c"$CG_H2_BATCH" -n"$CG_H2_BATCH" -m1 "https://127.0.0.1:${H2_PORT[$p]}/" >"$out" 2>&1 || true
      h2_check "$p h2instr $n connections, batch $k" "$out" >/dev/null
      read -r _ o _ < <(h2_counts "$out")
      ok=$((ok + o))
    done
  fi
  [ "$ok" -eq "$n" ] || echo "  $p: $ok of $n HTTP/2 requests succeeded under callgrind" >&2
  cg_stop "$p"
}
for p in "${PROXIES[@]}"; do
  has_section instr || break
  i1=$(callgrind_total "$p" "$CG_N1")
  i2=$(callgrind_total "$p" "$CG_N2")
  INSTR[$p]=$(awk -v a="$i1" -v b="$i2" -v n1="$CG_N1" -v n2="$CG_N2" 'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }')
  echo "  $p: ${INSTR[$p]} instructions/request" >&2
done

declare -A INSTR_H2 INSTR_H2C
has_section h2instr && echo "user-space instructions per HTTP/2 request (callgrind, $CG_H2_N1 vs $CG_H2_N2 requests over $CG_H2_CONNS connections) and per new HTTP/2 connection ($CG_H2_C1 vs $CG_H2_C2, one request each)" >&2
for p in "${PROXIES[@]}"; do
  has_section h2instr || break
  i1=$(callgrind_h2_total "$p" requests "$CG_H2_N1")
  i2=$(callgrind_h2_total "$p" requests "$CG_H2_N2")
  INSTR_H2[$p]=$(awk -v a="$i1" -v b="$i2" -v n1="$CG_H2_N1" -v n2="$CG_H2_N2" 'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }')
  c1=$(callgrind_h2_total "$p" connections "$CG_H2_C1")
  c2=$(callgrind_h2_total "$p" connections "$CG_H2_C2")
  INSTR_H2C[$p]=$(awk -v a="$c1" -v b="$c2" -v n1="$CG_H2_C1" -v n2="$CG_H2_C2" 'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }')
  echo "  $p: ${INSTR_H2[$p]} instructions/HTTP/2 request, ${INSTR_H2C[$p]} instructions/new HTTP/2 connection" >&2
done

# --- report -------------------------------------------------------------------------------------
mkdir -p bench/results
{
  echo "Run: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')),"
  echo "kinfra $("$KINFRA_BIN" --version | awk '{print $2}'), $(nginx -v 2>&1 | sed 's/.*: //'), HAProxy $(haproxy -v | awk 'NR==1 {print $3}'), $ROUNDS rounds x ${DURATION}s, medians."
  if has_section http; then
  echo
  echo "| proxy | req/s c64 | p50 c64 | p99 c64 | req/s c512 | p50 c512 | p99 c512 | CPU µs/req | instr/req | peak RSS |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for p in "${PROXIES[@]}"; do
    row="| $p"
    for c in 64 512; do
      rps=$(awk -v p="$p" -v c="$c" '$1==p && $2==c {print $4}' "$RESULTS" | median)
      p50=$(awk -v p="$p" -v c="$c" '$1==p && $2==c {print $5}' "$RESULTS" | median)
      p99=$(awk -v p="$p" -v c="$c" '$1==p && $2==c {print $6}' "$RESULTS" | median)
      row="$row | $(printf '%.0f' "$rps") | ${p50} ms | ${p99} ms"
    done
    row="$row | ${CPU_US[$p]:-} | ${INSTR[$p]:-} | ${RSS[$p]:+$((RSS[$p] / 1024)) MiB} |"
    echo "$row"
  done
  echo
  echo "Ratios kinfra / nginx (req/s: higher is better; the rest: lower is better):"
  echo
  for c in 64 512; do
    k=$(awk -v c="$c" '$1=="kinfra" && $2==c {print $4}' "$RESULTS" | median)
    n=$(awk -v c="$c" '$1=="nginx" && $2==c {print $4}' "$RESULTS" | median)
    k99=$(awk -v c="$c" '$1=="kinfra" && $2==c {print $6}' "$RESULTS" | median)
    n99=$(awk -v c="$c" '$1=="nginx" && $2==c {print $6}' "$RESULTS" | median)
    echo "- c$c: req/s $(awk -v a="$k" -v b="$n" 'BEGIN{printf "%.2f", a/b}'), p99 $(awk -v a="$k99" -v b="$n99" 'BEGIN{printf "%.2f", a/b}')" \
      "(paired within rounds: req/s $(paired_ratio "$RESULTS" 2 "$c" 4 3 | xargs printf '%.2f'), p99 $(paired_ratio "$RESULTS" 2 "$c" 6 3 | xargs printf '%.2f'))"
  done
  fi
  if has_section cpu; then
    echo "- CPU time per request $(awk -v a="${CPU_US[kinfra]}" -v b="${CPU_US[nginx]}" 'BEGIN{printf "%.2f", a/b}')" \
      "(paired within rounds: $(paired_ratio "$CPU_RESULTS" "" "" 3 2 | xargs printf '%.2f'));" \
      "user-space CPU time per request $(awk -v a="${USER_US[kinfra]}" -v b="${USER_US[nginx]}" 'BEGIN{printf "%.2f", a/b}')" \
      "(paired: $(paired_ratio "$CPU_RESULTS" "" "" 4 2 | xargs printf '%.2f'); kinfra ${USER_US[kinfra]} µs, nginx ${USER_US[nginx]} µs)"
  fi
  if has_section instr; then
    echo "- instructions per request $(awk -v a="${INSTR[kinfra]}" -v b="${INSTR[nginx]}" 'BEGIN{printf "%.2f", a/b}')"
  fi
  if has_section idle; then
    echo
    echo "Memory per idle keep-alive connection (RSS growth with $IDLE_CONNECTIONS held, after one request each):"
    echo
    for p in "${PROXIES[@]}"; do echo "- $p: ${IDLE_BYTES[$p]} bytes"; done
  fi
  if has_section tlsidle; then
    echo
    echo "Memory per idle HTTPS keep-alive connection (RSS growth with $TLS_IDLE_CONNECTIONS held, after a handshake and one request each):"
    echo
    for p in "${PROXIES[@]}"; do echo "- $p: ${TLS_IDLE_BYTES[$p]} bytes"; done
  fi
  if has_section https; then
    echo
    echo "HTTPS (TLS 1.3, ECDSA P-256, c64), medians:"
    echo
    echo "| proxy | keep-alive req/s | CPU µs/req | new connections/s (full handshake each) | CPU µs/connection |"
    echo "|---|---:|---:|---:|---:|"
    for p in "${PROXIES[@]}"; do
      ka=$(awk -v p="$p" '$1==p && $2=="keepalive" {print $4}' "$TLS_RESULTS" | median)
      kc=$(awk -v p="$p" '$1==p && $2=="keepalive" {print $5}' "$TLS_RESULTS" | median)
      hs=$(awk -v p="$p" '$1==p && $2=="handshake" {print $4}' "$TLS_RESULTS" | median)
      hc=$(awk -v p="$p" '$1==p && $2=="handshake" {print $5}' "$TLS_RESULTS" | median)
      echo "| $p | $(printf '%.0f' "$ka") | $kc | $(printf '%.0f' "$hs") | $hc |"
    done
    echo
    for m in keepalive handshake; do
      k=$(awk -v m="$m" '$1=="kinfra" && $2==m {print $4}' "$TLS_RESULTS" | median)
      n=$(awk -v m="$m" '$1=="nginx" && $2==m {print $4}' "$TLS_RESULTS" | median)
      kc=$(awk -v m="$m" '$1=="kinfra" && $2==m {print $5}' "$TLS_RESULTS" | median)
      nc=$(awk -v m="$m" '$1=="nginx" && $2==m {print $5}' "$TLS_RESULTS" | median)
      echo "- HTTPS $m, kinfra / nginx: req/s $(awk -v a="$k" -v b="$n" 'BEGIN{printf "%.2f", a/b}'), CPU per request $(awk -v a="$kc" -v b="$nc" 'BEGIN{printf "%.2f", a/b}')"
    done
  fi
  if has_section h2; then
    mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
    h2med() { awk -v p="$1" -v m="$2" -v f="$3" '$1==p && $2==m {print $f}' "$H2_RESULTS" | median; }
    echo
    echo "HTTP/2 over TLS (h2load, TLS 1.3, ECDSA P-256, $H2_STREAMS streams per connection), medians:"
    echo
    echo "| proxy | req/s c1 | CPU µs/req c1 | p50 / p99 c1 | req/s c64 | CPU µs/req c64 | p50 / p99 c64 | new h2 connections/s | CPU µs/connection | RSS before → c64 mid-run → after | failed |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for p in "${PROXIES[@]}"; do
      row="| $p"
      for m in c1 c64; do
        row="$row | $(printf '%.0f' "$(h2med "$p" "$m" 4)") | $(h2med "$p" "$m" 5) | $(h2med "$p" "$m" 6) / $(h2med "$p" "$m" 7) ms"
      done
      row="$row | $(printf '%.0f' "$(h2med "$p" conn 4)") | $(h2med "$p" conn 5)"
      row="$row | $(mib "${H2_RSS_BEFORE[$p]:-0}") → $(mib "$(h2med "$p" c64 8)") → $(mib "${H2_RSS_AFTER[$p]:-0}") MiB"
      row="$row | $(awk -v p="$p" '$1==p {n += $9} END {print n + 0}' "$H2_RESULTS") |"
      echo "$row"
    done
    echo
    echo "HTTP/2, kinfra / nginx (req/s: higher is better; the rest: lower is better):"
    echo
    for m in c1 c64; do
      echo "- $m×$H2_STREAMS: req/s $(awk -v a="$(h2med kinfra "$m" 4)" -v b="$(h2med nginx "$m" 4)" 'BEGIN{printf "%.2f", a/b}'), CPU per request $(awk -v a="$(h2med kinfra "$m" 5)" -v b="$(h2med nginx "$m" 5)" 'BEGIN{printf "%.2f", a/b}'), p99 $(awk -v a="$(h2med kinfra "$m" 7)" -v b="$(h2med nginx "$m" 7)" 'BEGIN{printf "%.2f", a/b}')"
    done
    echo "- new connections: connections/s $(awk -v a="$(h2med kinfra conn 4)" -v b="$(h2med nginx conn 4)" 'BEGIN{printf "%.2f", a/b}'), CPU per connection $(awk -v a="$(h2med kinfra conn 5)" -v b="$(h2med nginx conn 5)" 'BEGIN{printf "%.2f", a/b}')"
    if [ -s "$H2_FAILURES" ]; then
      echo
      echo "h2load reported failures (also in bench/results/h2-failures.txt):"
      echo
      echo '```'
      head -c 6000 "$H2_FAILURES"
      echo '```'
    fi
  fi
  if has_section h2instr; then
    echo
    echo "HTTP/2 callgrind (user-space instructions; per request: $CG_H2_N1 vs $CG_H2_N2 requests over $CG_H2_CONNS connections × $H2_STREAMS streams; per connection: $CG_H2_C1 vs $CG_H2_C2 new connections, one request each, full handshake):"
    echo
    echo "| proxy | instr/h2 request | instr/new h2 connection |"
    echo "|---|---:|---:|"
    for p in "${PROXIES[@]}"; do echo "| $p | ${INSTR_H2[$p]} | ${INSTR_H2C[$p]} |"; done
    echo
    echo "- kinfra / nginx: per request $(awk -v a="${INSTR_H2[kinfra]}" -v b="${INSTR_H2[nginx]}" 'BEGIN{printf "%.2f", a/b}'), per connection $(awk -v a="${INSTR_H2C[kinfra]}" -v b="${INSTR_H2C[nginx]}" 'BEGIN{printf "%.2f", a/b}')"
  fi
  if has_section admin; then
    echo
    echo "The admin surface (bench/admin_status.sh):"
    echo
    cat "$WORK/admin.md"
  fi
} | tee bench/results/latest.md
if [ -s "$H2_FAILURES" ]; then cp "$H2_FAILURES" bench/results/h2-failures.txt; fi
