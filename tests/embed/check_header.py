#!/usr/bin/env python3
"""The public header compiles with the C++20 standard library alone.

Compiles a file that includes <kinfra/kinfra.hpp> and uses its types, with -H (the compiler lists
every header it opens), and fails if any header of Boost (Asio, Beast), yaml-cpp, spdlog, fmt,
nlohmann/json or OpenSSL is among them, or if kinfra's own internal headers are.
"""
import argparse
import subprocess
import sys
import tempfile

SOURCE = r'''
#include <kinfra/kinfra.hpp>
int main() {
  kinfra::options o;
  kinfra::service_manager m(o);
  m.add_service({.name = "api", .command = {"./api"}, .port = 8000, .path_prefix = "/api"});
  m.add_route({.path = "/", .service = "api"});
  m.update_service_status("api", {.status_message = "Installing dependencies...", .state = kinfra::state::starting,
      .steps = {{"Port allocation", kinfra::step::completed}, {"Installing packages", kinfra::step::active}},
      .logs = {{"15:00:01", "info", "Started"}}});
  return m.status().size() + m.status_json().size() > 0 ? 0 : 1;
}
'''
FORBIDDEN = ["boost/", "yaml-cpp/", "spdlog/", "fmt/", "nlohmann/", "openssl/", "/common/", "/proxy/",
             "/supervisor/", "/fallback/"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compiler", required=True)
    ap.add_argument("--include", required=True)
    a = ap.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write(SOURCE)
        path = f.name
    r = subprocess.run([a.compiler, "-std=c++20", "-fsyntax-only", "-H", "-I", a.include, path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("the public header does not compile on its own:\n" + r.stderr, file=sys.stderr)
        return 1
    headers = [line.lstrip(". ").strip() for line in r.stderr.splitlines() if line.startswith(".")]
    if not any(h.endswith("kinfra/kinfra.hpp") for h in headers):
        print("-H did not list kinfra/kinfra.hpp:\n" + r.stderr, file=sys.stderr)
        return 1
    bad = [h for h in headers if any(f in h for f in FORBIDDEN)]
    if bad:
        print("the public header pulls in:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    print(f"kinfra/kinfra.hpp: {len(headers)} headers, all of the standard library")
    return 0


if __name__ == "__main__":
    sys.exit(main())
