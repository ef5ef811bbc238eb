#include "supervisor/restart_policy.hpp"

#include <algorithm>

namespace kinfra::supervisor {

restart_decision decide_restart(const restart_config& policy, const exit_info& exit, unsigned attempts) {
  restart_decision d;
  if (exit.requested) return d;
  switch (policy.when) {
    case restart_config::policy::never: return d;
    case restart_config::policy::on_failure:
      if (exit.clean) return d;
      break;
    case restart_config::policy::always: break;
  }
  if (policy.max_attempts > 0 && attempts >= policy.max_attempts) {
    d.gave_up = true;
    return d;
  }
  d.restart = true;
  // backoff * 2^attempts, computed without overflow: stop doubling once past the cap.
  auto delay = policy.backoff;
  for (unsigned i = 0; i < attempts && delay < policy.max_backoff; ++i) delay *= 2;
  d.delay = std::min(delay, policy.max_backoff);
  return d;
}

}  // namespace kinfra::supervisor
