// File: core/metrics_server.h — the loopback HTTP endpoint of `mailbridge run`: GET /metrics
// (Prometheus text format) and GET /healthz.
//
// One thread multiplexes every connection with poll(): a client that connects and sends
// nothing, or trickles its request, holds only its own connection, until its deadline.
// Each connection gets one answer and is closed (HTTP/1.1 with "Connection: close"):
//
//   GET /metrics   200, Content-Type metrics::kContentType, the body render() returns
//   GET /healthz   200 "ok\n" when healthy() (or no healthy given), else 503 "unhealthy\n"
//   GET other      404            other methods  405 (Allow: GET)
//   a request head over Options::max_request_bytes  431;  not HTTP  400
//   nothing complete before Options::read_timeout   408, then closed
//
// A query string is ignored. stop() (and the destructor) wakes the thread at once through a
// pipe, closes every connection and joins: it never waits for a client's time-out. render()
// and healthy() run on the server's thread, one request at a time.
//
//   auto server = MetricsServer::start(config.service.metrics,
//       [&] { return metrics::render(metrics_store.get()); }, [&] { return runner.healthy(); });
//   if (!server.ok()) return server.status();      // kInvalidInput (address) or kNetwork
//   ...
//   (*server)->stop();
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"

namespace mb {

class MetricsServer {
 public:
  struct Options {
    size_t max_request_bytes = 8192;                 // the request line and headers
    std::chrono::milliseconds read_timeout{5000};    // from accept to a whole request head
    std::chrono::milliseconds write_timeout{5000};   // to write the whole answer
    size_t max_connections = 32;                     // more wait in the listen backlog
  };

  // Listens on `listen` (core/listen_address.h: loopback only, port 0 = any free port) and
  // starts serving. kInvalidInput: not a loopback HOST:PORT; kNetwork: cannot listen there
  // (in use, …). `render` is required; `healthy` may be empty (always healthy).
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen,
                                                      std::function<std::string()> render,
                                                      std::function<bool()> healthy,
                                                      Options options);
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen,
                                                      std::function<std::string()> render,
                                                      std::function<bool()> healthy = {}) {
    return start(listen, std::move(render), std::move(healthy), Options{});
  }

  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Stops serving and joins the thread; idempotent. Open connections are closed unanswered.
  void stop();
  // The port listened on (the chosen one when started with port 0).
  uint16_t port() const;

 private:
  class Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mb
