#pragma once
/** @file One child process in its own process group. */

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kinfra::supervisor {

/** How to start a process. */
struct spawn_options {
  std::vector<std::string> argv;            ///< argv[0] is looked up in PATH when it has no '/'
  std::string cwd;                          ///< empty: inherit
  std::map<std::string, std::string> env;   ///< added to (and overriding) kinfra's environment
  int stdout_fd = -1;                       ///< -1: inherit kinfra's
  int stderr_fd = -1;                       ///< -1: inherit kinfra's
};

/** How a process ended. */
struct exit_status {
  int code = 0;    ///< exit code when `signal` is 0
  int signal = 0;  ///< the signal that killed it, or 0

  /** "Process exited with code 1" / "Killed by signal 9". */
  std::string describe() const;
};

/**
 * Starts `opts.argv` as the leader of a new process group, so that signals sent to the group reach
 * everything it starts. The child dies with kinfra (PR_SET_PDEATHSIG) if kinfra itself is killed.
 * @return the pid, or an error message ("Failed to start: No such file or directory").
 */
std::variant<pid_t, std::string> spawn_process(const spawn_options& opts);

/**
 * A TCP port that nothing listens on now (`port: auto`), below the kernel's ephemeral range so that
 * outgoing connections do not take it meanwhile. nullopt when none is free.
 */
std::optional<std::uint16_t> pick_free_port();

/** Sends `sig` to the whole process group led by `pid`. */
void signal_group(pid_t pid, int sig);

}  // namespace kinfra::supervisor
