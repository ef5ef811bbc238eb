// kinfra inside a program: a proxy in front of two services, one of which "builds" first while
// the program reports its progress on the dashboard and on the page visitors see.
//
//   embed_example [--listen ADDR] [--admin ADDR] [--api-port N] [--web-port N] [--build-seconds S]
//
// The services are `python3 -m http.server` (any program would do). Ctrl-C stops everything.
#include <kinfra/kinfra.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

namespace {

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

std::string now_hms() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string api_port = arg(argc, argv, "--api-port", "8000");
  const std::string web_port = arg(argc, argv, "--web-port", "8001");
  const double build_seconds = std::stod(arg(argc, argv, "--build-seconds", "6"));

  kinfra::options opts;  // the defaults: proxy on 0.0.0.0:9100, dashboard also on 127.0.0.1:9000
  opts.listen = {arg(argc, argv, "--listen", "0.0.0.0:9100")};
  opts.admin_listen = arg(argc, argv, "--admin", "127.0.0.1:9000");
  opts.workers = 1;
  kinfra::service_manager manager{opts};

  // A service kinfra runs and checks; its route comes with it.
  manager.add_service({.name = "api",
                       .command = {"python3", "-m", "http.server", api_port, "--bind", "127.0.0.1"},
                       .port = static_cast<std::uint16_t>(std::stoi(api_port)),
                       .path_prefix = "/api",
                       .health_path = "/"});
  // One that must "build" first: kinfra knows it, shows it, and starts it when told to.
  manager.add_service({.name = "frontend",
                       .command = {"python3", "-m", "http.server", web_port, "--bind", "127.0.0.1"},
                       .port = static_cast<std::uint16_t>(std::stoi(web_port)),
                       .health_path = "/",
                       .autostart = false});
  manager.add_route({.path = "/", .service = "frontend"});

  try {
    manager.start();  // returns once listening
  } catch (const std::exception& e) {
    std::cerr << "embed_example: " << e.what() << "\n";
    return 1;
  }
  for (const auto& a : manager.listen_addresses()) std::cout << "listening on " << a << std::endl;
  for (const auto& a : manager.admin_addresses()) std::cout << "dashboard on " << a << std::endl;

  // The "build": progress pushed from this thread while the main thread serves.
  std::thread build([&] {
    const auto step_time = std::chrono::duration<double>(build_seconds / 3);
    const std::vector<std::string> names = {"Fetching sources", "Installing dependencies", "Compiling assets"};
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::vector<kinfra::progress_step> steps;
      for (std::size_t j = 0; j < names.size(); ++j)
        steps.push_back({names[j], j < i ? kinfra::step::completed : j == i ? kinfra::step::active : kinfra::step::pending});
      manager.update_service_status("frontend", {.status_message = names[i] + "...",
                                                 .state = kinfra::state::starting,
                                                 .steps = steps,
                                                 .logs = {{now_hms(), "info", names[i]}}});
      std::this_thread::sleep_for(step_time);
    }
    std::vector<kinfra::progress_step> done;
    for (const auto& n : names) done.push_back({n, kinfra::step::completed});
    manager.update_service_status("frontend", {.status_message = "Build finished, starting",
                                               .steps = done,
                                               .logs = {{now_hms(), "info", "Build finished"}}});
    manager.start("frontend");
    std::cout << "frontend built and started" << std::endl;
  });

  manager.run();  // until Ctrl-C / SIGTERM: a graceful stop, services included
  build.join();
  return 0;
}
