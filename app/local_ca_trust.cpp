#include "app/local_ca_trust.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>

#include "proxy/dev_certificates.hpp"

namespace kinfra::app {
namespace {

namespace fs = std::filesystem;

/** Runs update-ca-certificates (quietly), if the system has it; false when it failed. */
bool update_ca_certificates(std::ostream& out, std::ostream& err) {
  const char* tool = "/usr/sbin/update-ca-certificates";
  if (::access(tool, X_OK) != 0) {
    out << "update-ca-certificates is not installed; install the ca-certificates package and run it\n";
    return true;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(tool, tool, "--fresh", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    err << "kinfra: update-ca-certificates failed; the system's trust store may not have changed\n";
    return false;
  }
  return true;
}

void browser_hint(std::ostream& out, const std::string& ca) {
  out << "Browsers with their own certificate list (Firefox; Chromium on Linux) need it too:\n"
         "  Chromium:  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'kinfra local CA' -i "
      << ca
      << "   (certutil: apt install libnss3-tools)\n"
         "  Firefox:   Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import… "
      << ca << "\n"
      << "  curl, wget, Python, Node (with --use-openssl-ca): the system store above is enough.\n";
}

}  // namespace

std::string store_file_name(const std::string& ca_cert) {
  std::string fp = proxy::tls::fingerprint_of(ca_cert);
  fp.erase(std::remove(fp.begin(), fp.end(), ':'), fp.end());
  for (auto& c : fp) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "kinfra-local-ca-" + fp.substr(0, 16) + ".crt";
}

int trust_local_ca(const trust_request& req, std::ostream& out, std::ostream& err) {
  const auto ca = proxy::tls::local_ca_paths(req.state_dir);
  try {
    if (proxy::tls::ensure_local_ca(req.state_dir)) out << "made kinfra's local CA: " << ca.cert << "\n";
  } catch (const std::exception& e) {
    err << "kinfra: cannot make the local CA: " << e.what() << "\n";
    return 1;
  }
  const fs::path target = fs::path(req.store) / store_file_name(ca.cert);
  std::error_code ec;
  fs::create_directories(req.store, ec);
  if (!ec) fs::copy_file(ca.cert, target, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    err << "kinfra: cannot copy " << ca.cert << " to " << target.string() << ": " << ec.message()
        << (ec == std::errc::permission_denied ? " (the system store needs root: sudo kinfra trust)" : "") << "\n";
    return 1;
  }
  fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                  ec);
  out << "kinfra's local CA (" << ca.cert << ") is now in " << target.string() << "\n";
  if (req.update_system && !update_ca_certificates(out, err)) return 1;
  if (req.update_system) out << "This machine now trusts the development certificates kinfra makes (tls: self_signed).\n";
  browser_hint(out, ca.cert);
  return 0;
}

int untrust_local_ca(const trust_request& req, std::ostream& out, std::ostream& err) {
  const auto ca = proxy::tls::local_ca_paths(req.state_dir);
  if (!fs::exists(ca.cert)) {
    out << "there is no local CA in " << req.state_dir << "; nothing to remove\n";
    return 0;
  }
  const fs::path target = fs::path(req.store) / store_file_name(ca.cert);
  std::error_code ec;
  if (!fs::remove(target, ec)) {
    if (ec) {
      err << "kinfra: cannot remove " << target.string() << ": " << ec.message() << "\n";
      return 1;
    }
    out << target.string() << " was not there; nothing to remove\n";
    return 0;
  }
  out << "removed " << target.string() << "\n";
  if (req.update_system && !update_ca_certificates(out, err)) return 1;
  out << "Remove it from browsers that keep their own list too (certutil -d sql:$HOME/.pki/nssdb -D -n 'kinfra local CA').\n";
  return 0;
}

}  // namespace kinfra::app
