#!/usr/bin/env bash
# The hardening checks (docs/TESTING.md), run by .ci/run after scripts/test.sh:
#   asan  the whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan  the proxy, StatusBoard, supervisor, reload, TLS, ACME and hold tests built with ThreadSanitizer
#   fuzz  each libFuzzer target (clang) for FUZZ_SECONDS (default 40) from its seed corpus
#
#   scripts/hardening.sh              all three
#   scripts/hardening.sh fuzz         only some: asan, tsan, fuzz
#   FUZZ_SECONDS=600 scripts/hardening.sh fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(asan tsan fuzz)
FUZZ_SECONDS=${FUZZ_SECONDS:-40}
JOBS=$(nproc)

scripts/install-deps.sh --test --hardening

# Any report fails the run: sanitizers abort at the first one, and print where.
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

FUZZ_TARGETS=(config request template log_line h2)

TARGETS=()  # what build() builds (empty: everything); set for one call
build() {  # dir, extra cmake args...
  local dir=$1; shift
  # -O1 -g1: fast enough to run the suite, line numbers in reports, and much quicker to compile
  # than -O2 -g with Beast and Asio.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    "$@" >/dev/null
  cmake --build "$dir" ${TARGETS[@]+--target "${TARGETS[@]}"}
}

for step in "${steps[@]}"; do
  case $step in
    asan)
      echo "== ASan + UBSan: the whole test suite"
      build build/asan -DKINFRA_SANITIZE=address,undefined
      # The browser test drives node and chromium, which are not what is being checked here.
      ctest --test-dir build/asan -E '^Browser\.' -j"$JOBS" --output-on-failure --timeout 300
      ;;
    tsan)
      echo "== TSan: proxy, StatusBoard, metrics, access log, embedding API, supervisor, reload, TLS, admin surface, hold, start-first restarts, instances"
      build build/tsan -DKINFRA_SANITIZE=thread
      ctest --test-dir build/tsan -R '^(StatusBoard|Metrics|AccessLog|Embed|Proxy|Supervisor|Reload|Shutdown|Tls|DevTls|Http2|H2|History|EventLog|SseBatches|EventsApi|EventStream|Acme|AdminSecurity|AdminOffWorker|Hold|StartFirst|Instances)' -j"$JOBS" \
        --output-on-failure --timeout 300
      ;;
    fuzz)
      echo "== libFuzzer: ${FUZZ_SECONDS}s per target"
      # Only the fuzz targets and the modules they link (not app/ or cli/).
      TARGETS=("${FUZZ_TARGETS[@]/#/fuzz_}")
      CXX=clang++ CC=clang build build/fuzz -DKINFRA_FUZZ=ON -DKINFRA_BUILD_TESTS=OFF
      TARGETS=()
      for target in "${FUZZ_TARGETS[@]}"; do
        mkdir -p "build/fuzz/corpus-$target"
        # New inputs go to the first folder; the seeds in the repository stay as they are.
        "build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 -artifact_prefix="build/fuzz/crash-$target-" \
          "build/fuzz/corpus-$target" "tests/fuzz/corpus/$target" 2>&1 | tail -15
        [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz_$target found a crash (build/fuzz/crash-$target-*)"; exit 1; }
      done
      ;;
    *) echo "unknown step: $step (expected asan, tsan or fuzz)" >&2; exit 2 ;;
  esac
done
echo "hardening: all passed (${steps[*]})"
