#pragma once
/**
 * @file kinfra's HTML pages, rendered from templates and the StatusBoard: the dashboard, the full
 * log view, and the loading / 503 / maintenance pages shown instead of a service that cannot
 * answer. Every string that came from a service is escaped here.
 */

#include <chrono>
#include <memory>
#include <string>

#include "common/config.hpp"
#include "common/status_board.hpp"
#include "fallback/status_json.hpp"
#include "fallback/template_renderer.hpp"

namespace kinfra::fallback {

/** Which of the three fallback pages a service gets. */
enum class page_kind { loading, error, maintenance };

/** The page a visitor sees for a service in this state (config `fallback.page` can pin it). */
page_kind choose_page(const service_status& s, const fallback_config& f);

/** What a page may show about a service. */
struct page_context {
  std::shared_ptr<const config> cfg;  ///< the configuration in force when the request came
  const status_board* board = nullptr;
  const template_store* templates = nullptr;
  std::shared_ptr<const template_store> template_hold;  ///< keeps `templates` alive across a reload
  std::string host;                 ///< for the footer
  bool details = false;             ///< pid, port, uptime, logs (admins and `public_details`)
  bool embed_status = true;         ///< put the current status in the page (not for remote shells)
  const service_rates* rates = nullptr;  ///< traffic per service, for the cards (may be null)
  const std::string* status_json = nullptr;  ///< the /__status__ document, when already rendered
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

/** The dashboard: stats, one card per service (rendered here, updated by the page's script). */
std::string render_dashboard(const page_context& ctx);

/** The full log view of one service (its script loads and follows the lines). */
std::string render_logs_page(const page_context& ctx, const std::string& service);
/** `/kinfra/service/NAME`: one service's charts, events and log (a shell: its script fetches them). */
std::string render_detail_page(const page_context& ctx, const std::string& service);

/** A fallback page for the service `s` (as it is on the board), configured as `svc`. */
std::string render_service_page(const page_context& ctx, const service_status& s, const service_config& svc,
                                page_kind kind);

/** The JSON body of a 503 for API clients (public fields only unless `details`). */
std::string render_service_json(const page_context& ctx, const service_status& s, const service_config& svc,
                                page_kind kind);

/** One card of the dashboard, as the script would build it; `rate` may be null (shown as "–"). */
std::string render_card(const service_status& s, const std::vector<log_entry>& logs, bool actions,
                        std::chrono::system_clock::time_point now, const service_rate* rate = nullptr);

/** "2.5 req/s", "120 req/s", or "–" when not known yet (the script formats the same way). */
std::string format_request_rate(const std::optional<double>& per_second);
/** "0.5%", or "–" when there were no requests to count errors of. */
std::string format_error_rate(const std::optional<double>& rate);

}  // namespace kinfra::fallback
