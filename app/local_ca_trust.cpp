#include "app/local_ca_trust.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <vector>

#include "proxy/dev_certificates.hpp"

namespace kinfra::app {
namespace {

namespace fs = std::filesystem;

/** Runs `argv` (looked up on PATH) and waits; its output goes to `out` only when it fails. */
bool run(const std::vector<std::string>& argv, std::ostream& out) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char log_path[] = "/tmp/kinfra-trust-XXXXXX";
  int log = ::mkstemp(log_path);
  out << std::flush;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const bool ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (log >= 0) {
    if (!ok) {
      std::ifstream in(log_path);
      out << in.rdbuf();
    }
    ::close(log);
    ::unlink(log_path);
  }
  return ok;
}

/** True when `name` is a program on PATH. */
bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    if (end > start && ::access((dirs.substr(start, end - start) + "/" + name).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

/**
 * Runs a command that changes the system's trust store: as is when kinfra runs as root, else
 * through sudo (which asks for the password on the terminal), as mkcert does. Says what it runs.
 */
bool as_root(std::vector<std::string> argv, std::ostream& out, std::ostream& err) {
  if (::geteuid() != 0) {
    if (!on_path("sudo")) {
      err << "kinfra: changing the system's trust store needs root, and sudo is not installed: run this as root\n";
      return false;
    }
    argv.insert(argv.begin(), "sudo");
    std::string shown;
    for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
    out << "running: " << shown << "\n";
  }
  return run(argv, err);
}

enum class store_update { done, no_tool, failed };

/** `fresh`: rebuild every link (a plain run leaves the removed CA's links behind). */
store_update update_ca_certificates(bool fresh, std::ostream& out, std::ostream& err) {
  if (::access("/usr/sbin/update-ca-certificates", X_OK) != 0) {
    out << "update-ca-certificates is not installed (apt install ca-certificates): only the file changed\n";
    return store_update::no_tool;
  }
  std::vector<std::string> argv{"/usr/sbin/update-ca-certificates"};
  if (fresh) argv.emplace_back("--fresh");
  if (!as_root(argv, out, err)) {
    err << "kinfra: update-ca-certificates failed; the system's trust store did not change\n";
    return store_update::failed;
  }
  return store_update::done;
}

/** `sudo kinfra trust` would use root's state_dir, not the one the user's kinfra signs with. */
void warn_about_sudo(const std::string& state_dir, std::ostream& err) {
  const char* sudo_user = std::getenv("SUDO_USER");
  if (::geteuid() == 0 && sudo_user && *sudo_user && state_dir.rfind("/root/", 0) == 0)
    err << "kinfra: note: run as root through sudo, this is root's local CA (" << state_dir
        << "); for " << sudo_user << "'s, run `kinfra trust` without sudo (it asks for sudo itself)\n";
}

void browser_hint(std::ostream& out, const std::string& ca, bool system) {
  out << "Browsers with their own certificate list (Firefox; Chromium on Linux) need it too:\n"
         "  Chromium:  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'kinfra local CA' -i "
      << ca
      << "   (certutil: apt install libnss3-tools)\n"
         "  Firefox:   Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import… "
      << ca << "\n";
  if (system) out << "  curl, wget, Python, Node (with --use-openssl-ca): the system store is enough.\n";
}

/**
 * The local CA to trust: the one in state_dir as it is when another user owns that folder (e.g.
 * root trusting the packaged service's CA: root must not create files the service then cannot
 * open), else made or renewed first. Empty, with the reason, when there is none to use.
 */
std::string ca_to_trust(const std::string& state_dir, std::ostream& out, std::ostream& err) {
  const auto ca = proxy::tls::local_ca_paths(state_dir);
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) == 0 && st.st_uid != ::geteuid()) {
    if (fs::exists(ca.cert)) return ca.cert;
    err << "kinfra: there is no local CA in " << state_dir << " yet, and that folder belongs to another user (uid "
        << st.st_uid << "): start kinfra once (it makes the CA), then trust it\n";
    return "";
  }
  try {
    if (proxy::tls::ensure_local_ca(state_dir)) out << "made kinfra's local CA: " << ca.cert << "\n";
  } catch (const std::exception& e) {
    err << "kinfra: cannot make the local CA: " << e.what() << "\n";
    return "";
  }
  return ca.cert;
}

/** kinfra's CA files in `store` that this user's kinfra made (whatever CA state_dir holds now). */
std::vector<fs::path> our_files_in(const std::string& store, const std::string& current) {
  // "kinfra local CA (alice@laptop)" → "kinfra local CA (alice": the same user, any host name.
  std::string mine = proxy::tls::local_ca_name();
  mine = mine.substr(0, std::min(mine.find('@'), mine.size() - 1));
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("kinfra-local-ca-", 0) != 0) continue;
    const std::string cn = proxy::tls::subject_cn_of(e.path().string());
    if (name == current || cn.rfind(mine + "@", 0) == 0 || cn == mine + ")") out.push_back(e.path());
  }
  return out;
}

}  // namespace

bool is_system_store(const std::string& store) {
  std::string a = fs::path(store).lexically_normal().string();
  while (a.size() > 1 && a.back() == '/') a.pop_back();
  return a == system_ca_store;
}

std::string store_file_name(const std::string& ca_cert) {
  std::string fp = proxy::tls::fingerprint_of(ca_cert);
  fp.erase(std::remove(fp.begin(), fp.end(), ':'), fp.end());
  for (auto& c : fp) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "kinfra-local-ca-" + fp.substr(0, 16) + ".crt";
}

int trust_local_ca(const trust_request& req, std::ostream& out, std::ostream& err) {
  warn_about_sudo(req.state_dir, err);
  const std::string ca = ca_to_trust(req.state_dir, out, err);
  if (ca.empty()) return 1;
  const fs::path target = fs::path(req.store) / store_file_name(ca);
  if (req.update_system) {
    // The system's folder belongs to root.
    if (!as_root({"install", "-D", "-m", "0644", ca, target.string()}, out, err)) {
      err << "kinfra: cannot copy " << ca << " to " << target.string() << "\n";
      return 1;
    }
  } else {
    std::error_code ec;
    fs::create_directories(req.store, ec);
    if (!ec) fs::copy_file(ca, target, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      err << "kinfra: cannot copy " << ca << " to " << target.string() << ": " << ec.message() << "\n";
      return 1;
    }
    fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                    ec);
  }
  out << "kinfra's local CA (" << ca << ") is now in " << target.string() << "\n";
  if (req.update_system) {
    const auto updated = update_ca_certificates(false, out, err);
    if (updated == store_update::failed) return 1;
    if (updated == store_update::done)
      out << "This machine now trusts the development certificates kinfra makes (tls: self_signed).\n";
  }
  browser_hint(out, ca, req.update_system);
  return 0;
}

int untrust_local_ca(const trust_request& req, std::ostream& out, std::ostream& err) {
  warn_about_sudo(req.state_dir, err);
  const auto ca = proxy::tls::local_ca_paths(req.state_dir);
  const std::string current = fs::exists(ca.cert) ? store_file_name(ca.cert) : "";
  const auto files = our_files_in(req.store, current);
  if (files.empty()) {
    out << "no local CA of kinfra's is in " << req.store << "; nothing to remove\n";
    return 0;
  }
  std::vector<std::string> rm{"rm", "-f"};
  for (const auto& f : files) rm.push_back(f.string());
  std::error_code ec;
  bool ok = true;
  if (req.update_system) ok = as_root(rm, out, err);
  else
    for (const auto& f : files) ok = fs::remove(f, ec) && ok;
  if (!ok) {
    err << "kinfra: cannot remove " << files.front().string() << (ec ? ": " + ec.message() : std::string()) << "\n";
    return 1;
  }
  for (const auto& f : files) out << "removed " << f.string() << "\n";
  if (req.update_system && update_ca_certificates(true, out, err) == store_update::failed) return 1;
  out << "Remove it from browsers that keep their own list too (certutil -d sql:$HOME/.pki/nssdb -D -n 'kinfra local CA').\n";
  return 0;
}

}  // namespace kinfra::app
