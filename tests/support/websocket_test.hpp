#pragma once
/** @file WebSocket peers for tunnel tests, built on Beast's synchronous websocket stream. */

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "http_test.hpp"

namespace kt {

/** A test_upstream handler: accepts the WebSocket handshake and echoes every message. */
void websocket_echo(socket_conn& c);

/**
 * Opens a WebSocket through 127.0.0.1:port at `path`, sends each message and collects the echoes.
 * Returns fewer echoes than messages when anything fails or `timeout` passes.
 */
std::vector<std::string> websocket_roundtrip(std::uint16_t port, const std::string& path,
                                             const std::vector<std::string>& messages, ms timeout = 10s,
                                             const std::function<void(std::size_t)>& after_echo = {});

/** The same over TLS (wss://), without verifying the server's certificate. */
std::vector<std::string> websocket_roundtrip_tls(std::uint16_t port, const std::string& path,
                                                 const std::vector<std::string>& messages, ms timeout = 10s);

}  // namespace kt
