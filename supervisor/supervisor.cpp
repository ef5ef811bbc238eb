#include "supervisor/supervisor.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include "supervisor/process.hpp"

namespace kinfra::supervisor {

supervisor::supervisor(std::shared_ptr<const config> cfg) : cfg_(std::move(cfg)) {}

supervisor::~supervisor() { stop_all(std::chrono::seconds(2)); }

void supervisor::start_all() {
  for (const auto& svc : cfg_->services) {
    if (svc.command.empty()) continue;
    spawn_options opts;
    opts.argv = svc.command_is_shell ? std::vector<std::string>{"/bin/sh", "-c", svc.command.front()} : svc.command;
    opts.cwd = svc.cwd;
    opts.env = svc.env;
    if (svc.port) opts.env["PORT"] = std::to_string(*svc.port);
    auto result = spawn_process(opts);
    if (auto* err = std::get_if<std::string>(&result)) {
      spdlog::error("service {}: {}", svc.name, *err);
      continue;
    }
    pid_t pid = std::get<pid_t>(result);
    spdlog::info("service {}: started (pid {})", svc.name, pid);
    std::lock_guard lock(mutex_);
    running_.push_back({svc.name, pid});
  }
}

void supervisor::stop_all(std::chrono::milliseconds grace) {
  std::vector<running> to_stop;
  {
    std::lock_guard lock(mutex_);
    to_stop.swap(running_);
  }
  // Signal every group first so they stop in parallel, then wait for each.
  for (auto it = to_stop.rbegin(); it != to_stop.rend(); ++it) signal_group(it->pid, SIGTERM);
  for (auto it = to_stop.rbegin(); it != to_stop.rend(); ++it) {
    auto st = stop_process_group(it->pid, SIGTERM, grace);
    spdlog::info("service {}: stopped ({})", it->name, st.describe());
  }
}

}  // namespace kinfra::supervisor
