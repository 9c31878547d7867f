// File: core/metrics_server.cpp — MetricsServer: one thread, poll() over a loopback listening
// socket, a wake pipe and the open connections.
#include "core/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/listen_address.h"
#include "core/metrics.h"

namespace mb {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err) { return std::strerror(err); }

std::string response(int code, std::string_view reason, std::string_view content_type,
                     const std::string& body, std::string_view extra_header = {}) {
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                     "{}Connection: close\r\n\r\n{}",
                     code, reason, content_type, body.size(), extra_header, body);
}

std::string plain(int code, std::string_view reason, const std::string& body,
                  std::string_view extra_header = {}) {
  return response(code, reason, "text/plain; charset=utf-8", body, extra_header);
}

// Where a request head ends ("\r\n\r\n", or "\n\n" from a lax client); npos: not yet.
size_t head_end(const std::string& in) {
  size_t crlf = in.find("\r\n\r\n");
  size_t lf = in.find("\n\n");
  return std::min(crlf, lf);
}

int bind_listen(const ListenAddress& a, std::string& error) {
  int family = a.ipv6 ? AF_INET6 : AF_INET;
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "socket: " + errno_text(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a.ipv6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a.port);
    ::inet_pton(AF_INET6, a.host.c_str(), &s6->sin6_addr);
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a.port);
    ::inet_pton(AF_INET, a.host.c_str(), &s4->sin_addr);
    len = sizeof *s4;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 64) != 0) {
    error = errno_text(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace

// One client's connection; outside the anonymous namespace because Impl holds a list of them.
struct MetricsConnection {
  int fd = -1;
  std::string in;          // the request head read so far
  std::string out;         // the answer, once known
  size_t written = 0;
  std::chrono::steady_clock::time_point deadline;
  bool answering = false;  // out is set: writing, no more reading
};

class MetricsServer::Impl {
 public:
  Impl(int listen_fd, int wake_read, int wake_write, std::function<std::string()> render,
       std::function<bool()> healthy, Options options)
      : listen_fd_(listen_fd), wake_read_(wake_read), wake_write_(wake_write),
        port_(bound_port(listen_fd)), render_(std::move(render)), healthy_(std::move(healthy)),
        options_(options) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Impl() {
    stop();
    ::close(listen_fd_);
    ::close(wake_read_);
    ::close(wake_write_);
  }

  void stop() {
    std::lock_guard lk(stop_mu_);
    if (!thread_.joinable()) return;
    char b = 1;
    while (::write(wake_write_, &b, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }

  uint16_t port() const { return port_; }

 private:
  void loop();
  void accept_all();
  void on_readable(MetricsConnection& c);
  void on_writable(MetricsConnection& c);
  void expire(MetricsConnection& c, Clock::time_point now);
  std::string answer(const std::string& head);
  void close_all();

  int listen_fd_;
  int wake_read_;
  int wake_write_;
  uint16_t port_;
  std::function<std::string()> render_;
  std::function<bool()> healthy_;
  Options options_;
  std::list<MetricsConnection> conns_;
  std::mutex stop_mu_;
  std::thread thread_;
};

void MetricsServer::Impl::loop() {
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({wake_read_, POLLIN, 0});
    const bool room = conns_.size() < options_.max_connections;
    fds.push_back({room ? listen_fd_ : -1, POLLIN, 0});  // a full house leaves the backlog
    Clock::time_point next = Clock::time_point::max();
    for (const auto& c : conns_) {
      fds.push_back({c.fd, static_cast<short>(c.answering ? POLLOUT : POLLIN), 0});
      next = std::min(next, c.deadline);
    }
    int timeout = -1;
    if (next != Clock::time_point::max()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
      timeout = static_cast<int>(std::clamp<int64_t>(left, 0, 60000));
    }
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::error("metrics server: poll: {}", errno_text(errno));
      break;
    }
    if (fds[0].revents != 0) break;  // stop()
    size_t i = 2;
    const auto now = Clock::now();
    for (auto it = conns_.begin(); it != conns_.end(); ++i) {
      MetricsConnection& c = *it;
      short ev = fds[i].revents;
      if (ev & (POLLIN | POLLHUP | POLLERR)) on_readable(c);
      if (c.fd >= 0 && c.answering && (ev & (POLLOUT | POLLERR | POLLHUP))) on_writable(c);
      if (c.fd >= 0 && now >= c.deadline) expire(c, now);
      it = c.fd < 0 ? conns_.erase(it) : std::next(it);
    }
    if (fds[1].revents & POLLIN) accept_all();
  }
  close_all();
}

// A connection past its deadline: a request that did not arrive in time gets a 408 (with
// the write deadline to take it); an answer that could not be written is dropped.
void MetricsServer::Impl::expire(MetricsConnection& c, Clock::time_point now) {
  if (c.answering) {
    ::close(c.fd);
    c.fd = -1;
    return;
  }
  c.out = plain(408, "Request Timeout", "the request did not arrive in time\n");
  c.answering = true;
  c.deadline = now + options_.write_timeout;
}

void MetricsServer::Impl::accept_all() {
  while (conns_.size() < options_.max_connections) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: none left; anything else: the client's problem
    conns_.push_back({fd, {}, {}, 0, Clock::now() + options_.read_timeout, false});
  }
}

void MetricsServer::Impl::on_readable(MetricsConnection& c) {
  if (c.answering) return;
  char buf[4096];
  ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {  // closed before a whole request: nobody to answer
    ::close(c.fd);
    c.fd = -1;
    return;
  }
  c.in.append(buf, static_cast<size_t>(n));
  size_t end = head_end(c.in);
  if (end == std::string::npos && c.in.size() <= options_.max_request_bytes) return;
  if (end == std::string::npos || end > options_.max_request_bytes) {
    c.out = plain(431, "Request Header Fields Too Large", "request too large\n");
  } else {
    c.out = answer(c.in.substr(0, end));
  }
  c.in.clear();
  c.answering = true;
  c.deadline = Clock::now() + options_.write_timeout;
  on_writable(c);
}

void MetricsServer::Impl::on_writable(MetricsConnection& c) {
  while (c.written < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    c.written += static_cast<size_t>(n);
  }
  ::close(c.fd);
  c.fd = -1;
}

std::string MetricsServer::Impl::answer(const std::string& head) {
  std::string_view line(head);
  line = line.substr(0, line.find_first_of("\r\n"));
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).rfind("HTTP/", 0) != 0) {
    return plain(400, "Bad Request", "not an HTTP request\n");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (target != "/metrics" && target != "/healthz") return plain(404, "Not Found", "not found\n");
  if (method != "GET") {
    return plain(405, "Method Not Allowed", "only GET\n", "Allow: GET\r\n");
  }
  try {
    if (target == "/healthz") {
      if (!healthy_ || healthy_()) return plain(200, "OK", "ok\n");
      return plain(503, "Service Unavailable", "unhealthy\n");
    }
    return response(200, "OK", metrics::kContentType, render_());
  } catch (const std::exception& e) {
    spdlog::error("metrics server: {}: {}", target, e.what());
    return plain(500, "Internal Server Error", "internal error\n");
  }
}

void MetricsServer::Impl::close_all() {
  for (auto& c : conns_) {
    if (c.fd >= 0) ::close(c.fd);
  }
  conns_.clear();
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

void MetricsServer::stop() { impl_->stop(); }
uint16_t MetricsServer::port() const { return impl_->port(); }

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen,
                                                            std::function<std::string()> render,
                                                            std::function<bool()> healthy,
                                                            Options options) {
  auto address = parse_loopback_listen(listen);
  if (!address.ok()) return address.status().prefixed("metrics address");
  if (!render) return Status(ErrorKind::kInternal, "metrics server: no render function");
  std::string error;
  int fd = bind_listen(*address, error);
  if (fd < 0) {
    return Status(ErrorKind::kNetwork, "metrics: cannot listen on " + listen + ": " + error);
  }
  int wake[2];
  if (::pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    int err = errno;
    ::close(fd);
    return Status(ErrorKind::kInternal, "metrics server: pipe: " + errno_text(err));
  }
  auto impl = std::make_unique<Impl>(fd, wake[0], wake[1], std::move(render), std::move(healthy),
                                     options);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace mb
