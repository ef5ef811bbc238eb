#include "app/local_ca_trust.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <vector>

#include "proxy/dev_certificates.hpp"

namespace kinfra::app {
namespace {

namespace fs = std::filesystem;

/** Runs `argv` (looked up on PATH) and waits; true when it exited with 0. */
bool run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/**
 * Runs a command that changes the system's trust store: as is when kinfra runs as root, else
 * through sudo (which asks for the password on the terminal), as mkcert does. Says what it runs.
 */
bool as_root(std::vector<std::string> argv, std::ostream& out) {
  if (::geteuid() != 0) {
    argv.insert(argv.begin(), "sudo");
    std::string shown;
    for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
    out << "running: " << shown << "\n" << std::flush;
  }
  return run(argv);
}

bool update_ca_certificates(bool fresh, std::ostream& out, std::ostream& err) {
  if (::access("/usr/sbin/update-ca-certificates", X_OK) != 0) {
    out << "update-ca-certificates is not installed (apt install ca-certificates), so only the file was changed\n";
    return true;
  }
  std::vector<std::string> argv{"/usr/sbin/update-ca-certificates"};
  if (fresh) argv.emplace_back("--fresh");
  if (!as_root(argv, out)) {
    err << "kinfra: update-ca-certificates failed; the system's trust store did not change\n";
    return false;
  }
  return true;
}

/** `sudo kinfra trust` would use root's state_dir, not the one the user's kinfra signs with. */
void warn_about_sudo(const std::string& state_dir, std::ostream& err) {
  const char* sudo_user = std::getenv("SUDO_USER");
  if (::geteuid() == 0 && sudo_user && *sudo_user && state_dir.rfind("/root/", 0) == 0)
    err << "kinfra: note: run as root through sudo, this is root's local CA (" << state_dir
        << "); for " << sudo_user << "'s, run `kinfra trust` without sudo (it asks for sudo itself)\n";
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
  warn_about_sudo(req.state_dir, err);
  const fs::path target = fs::path(req.store) / store_file_name(ca.cert);
  if (req.update_system) {
    // The system's folder belongs to root.
    if (!as_root({"install", "-D", "-m", "0644", ca.cert, target.string()}, out)) {
      err << "kinfra: cannot copy " << ca.cert << " to " << target.string() << "\n";
      return 1;
    }
  } else {
    std::error_code ec;
    fs::create_directories(req.store, ec);
    if (!ec) fs::copy_file(ca.cert, target, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      err << "kinfra: cannot copy " << ca.cert << " to " << target.string() << ": " << ec.message() << "\n";
      return 1;
    }
    fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                    ec);
  }
  out << "kinfra's local CA (" << ca.cert << ") is now in " << target.string() << "\n";
  if (req.update_system && !update_ca_certificates(false, out, err)) return 1;
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
  warn_about_sudo(req.state_dir, err);
  const fs::path target = fs::path(req.store) / store_file_name(ca.cert);
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    out << target.string() << " is not there; nothing to remove\n";
    return 0;
  }
  if (req.update_system ? !as_root({"rm", "-f", target.string()}, out) : !fs::remove(target, ec)) {
    err << "kinfra: cannot remove " << target.string() << (ec ? ": " + ec.message() : std::string()) << "\n";
    return 1;
  }
  out << "removed " << target.string() << "\n";
  if (req.update_system && !update_ca_certificates(true, out, err)) return 1;
  out << "Remove it from browsers that keep their own list too (certutil -d sql:$HOME/.pki/nssdb -D -n 'kinfra local CA').\n";
  return 0;
}

}  // namespace kinfra::app
