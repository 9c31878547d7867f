// File: tests/unit/cli/line_server.h — a scripted plaintext server on 127.0.0.1 for CLI
// tests of hostile or failing servers (IMAP, POP3, SMTP): it sends a greeting, then answers
// each line the client sends with whatever `respond` returns, in one write, so that bytes a
// test appends to a reply (a STARTTLS injection) reach the client in the same segment.
//
//   mb::testing::LineServer server("* OK ready\r\n", [](const std::string& line) {
//     return line.find("STARTTLS") != std::string::npos ? tag(line) + " OK go\r\n* x\r\n" : "";
//   });
//   ... "port = " + std::to_string(server.port()) ...
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mb::testing {

class LineServer {
 public:
  // The reply to one line (without its CRLF); "" sends nothing.
  using Respond = std::function<std::string(const std::string& line)>;

  LineServer(std::string greeting, Respond respond)
      : greeting_(std::move(greeting)), respond_(std::move(respond)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 8);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    (void)!::pipe(wake_);
    thread_ = std::thread([this] { run(); });
  }
  ~LineServer() {
    char c = 'x';
    (void)!::write(wake_[1], &c, 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  LineServer(const LineServer&) = delete;
  LineServer& operator=(const LineServer&) = delete;

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  // Every line the clients sent, in order.
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  bool wait_readable(int fd) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    while (::poll(p, 2, -1) < 0) {
    }
    return (p[1].revents & POLLIN) == 0;
  }
  void send_all(int fd, const std::string& data) {
    if (!data.empty()) (void)!::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
  }
  // One connection at a time: the CLI under test opens them one after another.
  void run() {
    while (wait_readable(listen_fd_)) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      serve(fd);
      ::close(fd);
    }
  }
  void serve(int fd) {
    send_all(fd, greeting_);
    std::string buf;
    char chunk[4096];
    while (wait_readable(fd)) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
      for (size_t eol; (eol = buf.find('\n')) != std::string::npos;) {
        std::string line = buf.substr(0, eol);
        buf.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        {
          std::lock_guard lock(mu_);
          lines_.push_back(line);
        }
        send_all(fd, respond_(line));
      }
    }
  }

  std::string greeting_;
  Respond respond_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

}  // namespace mb::testing
