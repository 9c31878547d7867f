// File: tests/unit/core/script_server.h — a plain-TCP server on 127.0.0.1 (ephemeral port, a
// thread per connection) that acts out a test's script against a real socket: what a
// ScriptedStream cannot do, such as sending one byte every few hundred milliseconds or
// streaming without end, so that deadlines are tested on the real network path.
//
//   mb::testing::ScriptServer server([](mb::testing::Peer& p) {
//     p.trickle("* OK ready\r\n", std::chrono::milliseconds(300));
//   });
//   auto s = mb::connect_tcp("127.0.0.1", server.port(), timeouts);
//
// Every loop in a handler ends when the client hangs up or the server is destroyed.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mb::testing {

// One accepted connection, as the handler sees it.
class Peer {
 public:
  Peer(int fd, int wake) : fd_(fd), wake_(wake) {}

  // False once the client hung up or the server is stopping.
  bool send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      if (!wait(POLLOUT, -1)) return false;
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads up to and including the next LF; false on hang-up or stop.
  bool read_line(std::string& line) {
    line.clear();
    char c = 0;
    while (c != '\n') {
      if (!wait(POLLIN, -1) || ::recv(fd_, &c, 1, 0) != 1) return false;
      line.push_back(c);
    }
    return true;
  }
  // Sends `bytes` one byte per `every`, then keeps sending them while the client listens.
  void trickle(const std::string& bytes, std::chrono::milliseconds every, bool repeat = false) {
    do {
      for (char c : bytes) {
        if (!send(std::string(1, c)) || !pause(every)) return;
      }
    } while (repeat);
  }
  // Sends `chunk` again and again until the client hangs up or the server stops.
  void stream(const std::string& chunk) {
    while (send(chunk)) {
    }
  }
  // Waits `d` unless the server stops first (false then).
  bool pause(std::chrono::milliseconds d) {
    pollfd p{wake_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(d.count())) == 0;
  }

 private:
  bool wait(short events, int ms) {
    pollfd p[2] = {{fd_, events, 0}, {wake_, POLLIN, 0}};
    if (::poll(p, 2, ms) <= 0) return false;
    return (p[1].revents & POLLIN) == 0;
  }

  int fd_;
  int wake_;
};

class ScriptServer {
 public:
  using Handler = std::function<void(Peer&)>;

  explicit ScriptServer(Handler handler) : handler_(std::move(handler)) {
    std::signal(SIGPIPE, SIG_IGN);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        ::pipe(wake_) != 0) {
      throw std::runtime_error("cannot start the script server");
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptServer() {
    char c = 'x';
    (void)!::write(wake_[1], &c, 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void run() {
    std::vector<std::thread> connections;
    for (;;) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (p[1].revents & POLLIN) break;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      connections.emplace_back([this, fd] {
        Peer peer(fd, wake_[0]);
        handler_(peer);
        ::close(fd);
      });
    }
    for (auto& t : connections) t.join();
  }

  Handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace mb::testing
