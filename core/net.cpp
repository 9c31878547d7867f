// File: core/net.cpp — TCP connections with poll() deadlines, and TLS over them (OpenSSL).
//
// Sockets are non-blocking from the start, so that every connect, handshake, read and write
// waits in poll() with a deadline instead of blocking forever on a silent server.
#include "core/net.h"

#include "core/cancel.h"
#include "core/utc.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "core/internal/resolver.h"
#include "core/internal/tls.h"

namespace mb {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void default_insecure_sink(const std::string& message) { spdlog::warn("{}", message); }

std::atomic<void (*)(const std::string&)> g_insecure_sink{&default_insecure_sink};

// OpenSSL writes to the socket with write(), which raises SIGPIPE on a closed peer; plain
// sends use MSG_NOSIGNAL. Only a default disposition is replaced, never an embedder's.
void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old {};
    if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      std::signal(SIGPIPE, SIG_IGN);
    }
  });
}

std::string host_port(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string address_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

uint16_t address_port(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
}

enum class Wait { kReady, kTimeout, kError, kCancelled };

// Waits for `events` on fd until `deadline`, or until the thread's Cancel (core/cancel.h)
// fires; kError leaves errno set.
Wait wait_fd(int fd, short events, Clock::time_point deadline) {
  const Cancel* cancel = CancelScope::current();
  for (;;) {
    if (cancel != nullptr && cancel->fired()) return Wait::kCancelled;
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::kTimeout;
    // Without a descriptor for the Cancel (out of descriptors), waits are cut into slices.
    if (cancel != nullptr && cancel->fd() < 0) left = std::min<long long>(left, 100);
    pollfd p[2] = {{fd, events, 0}, {cancel != nullptr ? cancel->fd() : -1, POLLIN, 0}};
    int r = ::poll(p, p[1].fd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (r > 0 && p[1].revents != 0) return Wait::kCancelled;
    if (r > 0) return Wait::kReady;  // errors and hang-ups surface in the next I/O call
    if (r < 0 && errno != EINTR) return Wait::kError;
  }
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// The helper threads of core/internal/resolver.h. Never destroyed: a helper that outlives
// main() (a lookup still hung at exit) must not touch a destroyed mutex.
struct Lookups {
  std::mutex mu;
  std::condition_variable idle;
  size_t pending = 0;
  internal::Resolver resolver;  // empty: getaddrinfo
};

Lookups& lookups() {
  static Lookups* l = new Lookups;
  return *l;
}

// One lookup, shared by the caller and its helper; whoever lets go last frees the answer.
struct Lookup {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int rc = 0;
  int err = 0;
  addrinfo* list = nullptr;
  ~Lookup() {
    if (list != nullptr) freeaddrinfo(list);
  }
};

void finish_lookup() {
  Lookups& l = lookups();
  std::lock_guard lock(l.mu);
  --l.pending;
  l.idle.notify_all();
}

Result<AddrInfoPtr> resolve(const std::string& host, uint16_t port, milliseconds timeout) {
  Lookups& l = lookups();
  internal::Resolver resolver;
  {
    // A burst (a thousand mailboxes starting at once) waits for a free helper; only when
    // none frees up within the caller's time-out is the resolver taken to hang.
    std::unique_lock lock(l.mu);
    if (!l.idle.wait_for(lock, timeout,
                         [&] { return l.pending < internal::kMaxPendingLookups; })) {
      return network_error("cannot resolve host " + host + ": " + std::to_string(l.pending) +
                       " earlier name lookups have not answered within " +
                       format_duration(timeout) + " (the resolver hangs); no other is "
                       "started until they do");
    }
    ++l.pending;
    resolver = l.resolver;
  }
  if (!resolver) resolver = ::getaddrinfo;
  auto lookup = std::make_shared<Lookup>();
  try {
    std::thread([lookup, resolver, host, service = std::to_string(port)] {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* list = nullptr;
      errno = 0;
      int rc = resolver(host.c_str(), service.c_str(), &hints, &list);
      int err = errno;
      {
        std::lock_guard lock(lookup->mu);
        lookup->rc = rc;
        lookup->err = err;
        lookup->list = list;
        lookup->done = true;
      }
      lookup->cv.notify_all();
      finish_lookup();
    }).detach();
  } catch (const std::system_error& e) {
    finish_lookup();
    return network_error("cannot resolve host " + host + ": no thread for the name lookup: " +
                     e.what());
  }
  std::unique_lock lock(lookup->mu);
  if (!lookup->cv.wait_for(lock, timeout, [&] { return lookup->done; })) {
    return network_error("cannot resolve host " + host + ": the name lookup did not answer within " +
                     format_duration(timeout) + " (the connect time-out)");
  }
  if (lookup->rc != 0) {
    std::string why = lookup->rc == EAI_SYSTEM ? std::strerror(lookup->err)
                                               : gai_strerror(lookup->rc);
    return network_error("cannot resolve host " + host + ": " + why);
  }
  return AddrInfoPtr(std::exchange(lookup->list, nullptr));
}

std::string describe_connect_error(int err, const std::string& where) {
  switch (err) {
    case ECONNREFUSED: return "connection refused by " + where;
    case ETIMEDOUT: return "timed out connecting to " + where;
    case ENETUNREACH:
    case EHOSTUNREACH: return "cannot reach " + where + ": " + std::strerror(err);
    default: return "cannot connect to " + where + ": " + std::strerror(err);
  }
}

void tune_socket(int fd) {
  int one = 1;
  // Commands are written whole, so Nagle would only add a round trip of delay.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

// Connects to one address; returns the socket, or -1 with `why` set.
int connect_one(const addrinfo* ai, const std::string& where, milliseconds timeout,
                std::string& why) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
  if (fd < 0) {
    why = "cannot create a socket for " + where + ": " + std::strerror(errno);
    return -1;
  }
  int err = 0;
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) err = errno;
  if (err == EINPROGRESS) {
    Wait w = wait_fd(fd, POLLOUT, Clock::now() + timeout);
    if (w == Wait::kCancelled) {
      why = "interrupted while connecting to " + where + ": stopped by the service";
      ::close(fd);
      return -1;
    }
    if (w == Wait::kTimeout) {
      why = "timed out after " + format_duration(timeout) + " connecting to " + where;
      ::close(fd);
      return -1;
    }
    socklen_t len = sizeof err;
    err = w == Wait::kError ? errno : 0;
    if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  }
  if (err != 0) {
    why = describe_connect_error(err, where);
    ::close(fd);
    return -1;
  }
  tune_socket(fd);
  return fd;
}

class SocketStream final : public Stream {
 public:
  SocketStream(int fd, const std::string& host, uint16_t port, milliseconds timeout)
      : fd_(fd), peer_(host_port(host, port)), timeout_(timeout) {}
  ~SocketStream() override { close(); }

  Result<size_t> read_some(char* buf, size_t cap) override;
  Status write_all(std::string_view data) override;
  void set_timeout(milliseconds t) override { timeout_ = t; }
  void set_deadline(std::optional<Clock::time_point> at) override { deadline_ = at; }
  Status start_tls(const std::string& host, const TlsOptions& options) override;
  bool is_tls() const override { return tls_ != nullptr; }
  std::string tls_summary() const override { return tls_ ? tls_->summary() : std::string(); }
  void close() override;

 private:
  Result<size_t> read_plain(char* buf, size_t cap);
  Result<size_t> read_tls(char* buf, size_t cap);
  Status write_plain(std::string_view data);
  Status write_tls(std::string_view data);
  Status handshake(internal::TlsSession& session);
  Status tls_wait(int ssl_error, Clock::time_point deadline, const std::string& doing);
  Status wait_for(short events, Clock::time_point deadline, const std::string& doing);
  Status io_error(int err);
  Status closed_by_server();
  // now + timeout_, capped by the step deadline.
  Clock::time_point wait_until() const {
    auto t = Clock::now() + timeout_;
    return deadline_ && *deadline_ < t ? *deadline_ : t;
  }

  int fd_;
  std::string peer_;
  milliseconds timeout_;
  std::optional<Clock::time_point> deadline_;
  std::unique_ptr<internal::TlsSession> tls_;
  bool tls_broken_ = false;  // no close_notify after a fatal TLS error
};

Status SocketStream::closed_by_server() {
  tls_broken_ = true;
  return network_error("connection closed by server " + peer_);
}

Status SocketStream::io_error(int err) {
  tls_broken_ = true;
  if (err == ECONNRESET || err == EPIPE) return network_error("connection reset by " + peer_);
  return network_error("connection to " + peer_ + " failed: " + std::strerror(err));
}

Status SocketStream::wait_for(short events, Clock::time_point deadline,
                              const std::string& doing) {
  switch (wait_fd(fd_, events, deadline)) {
    case Wait::kReady: return Status::Ok();
    case Wait::kTimeout:
      return network_error("timed out after " + format_duration(timeout_) + " " + doing + " " +
                       peer_);
    case Wait::kCancelled:
      tls_broken_ = true;  // a TLS record may be half-written: no close_notify after this
      return Cancel::cancelled(doing + " " + peer_);
    default: return io_error(errno);
  }
}

Result<size_t> SocketStream::read_some(char* buf, size_t cap) {
  if (fd_ < 0) return network_error("connection to " + peer_ + " is closed");
  if (cap == 0) return Status(ErrorKind::kInternal, "read_some with no room");
  return tls_ ? read_tls(buf, cap) : read_plain(buf, cap);
}

Status SocketStream::write_all(std::string_view data) {
  if (fd_ < 0) return network_error("connection to " + peer_ + " is closed");
  return tls_ ? write_tls(data) : write_plain(data);
}

Result<size_t> SocketStream::read_plain(char* buf, size_t cap) {
  auto deadline = wait_until();
  for (;;) {
    ssize_t n = ::recv(fd_, buf, cap, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return closed_by_server();
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return io_error(errno);
    MB_RETURN_IF_ERROR(wait_for(POLLIN, deadline, "waiting for data from"));
  }
}

Status SocketStream::write_plain(std::string_view data) {
  // The deadline restarts with each bit of progress: a large upload on a slow link is
  // fine, a peer that stops reading is not.
  auto deadline = wait_until();
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      deadline = wait_until();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return io_error(errno);
    MB_RETURN_IF_ERROR(wait_for(POLLOUT, deadline, "sending to"));
  }
  return Status::Ok();
}

Status SocketStream::tls_wait(int ssl_error, Clock::time_point deadline,
                              const std::string& doing) {
  switch (ssl_error) {
    case SSL_ERROR_WANT_READ: return wait_for(POLLIN, deadline, doing);
    case SSL_ERROR_WANT_WRITE: return wait_for(POLLOUT, deadline, doing);
    case SSL_ERROR_ZERO_RETURN: return closed_by_server();
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_last_error() == 0) return errno != 0 ? io_error(errno) : closed_by_server();
      break;
    default: break;
  }
  unsigned long e = ERR_peek_last_error();
  if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return closed_by_server();
  tls_broken_ = true;
  const char* reason = ERR_reason_error_string(e);
  return network_error("TLS connection to " + peer_ + " failed: " +
                   (reason != nullptr ? reason : "unknown error"));
}

Result<size_t> SocketStream::read_tls(char* buf, size_t cap) {
  auto deadline = wait_until();
  for (;;) {
    ERR_clear_error();
    errno = 0;
    size_t got = 0;
    int r = SSL_read_ex(tls_->ssl(), buf, cap, &got);
    if (r == 1) return got;
    MB_RETURN_IF_ERROR(tls_wait(SSL_get_error(tls_->ssl(), r), deadline,
                                "waiting for data from"));
  }
}

Status SocketStream::write_tls(std::string_view data) {
  auto deadline = wait_until();
  while (!data.empty()) {
    ERR_clear_error();
    errno = 0;
    size_t sent = 0;
    int r = SSL_write_ex(tls_->ssl(), data.data(), data.size(), &sent);
    if (r == 1) {
      data.remove_prefix(sent);
      deadline = wait_until();
      continue;
    }
    MB_RETURN_IF_ERROR(tls_wait(SSL_get_error(tls_->ssl(), r), deadline, "sending to"));
  }
  return Status::Ok();
}

Status SocketStream::handshake(internal::TlsSession& session) {
  auto deadline = wait_until();
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(session.ssl());
    if (r == 1) return session.check_pins();
    int e = SSL_get_error(session.ssl(), r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0 && errno != 0) {
        return io_error(errno).prefixed("TLS handshake");
      }
      return session.handshake_error(e);
    }
    MB_RETURN_IF_ERROR(wait_for(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline,
                                "in the TLS handshake with"));
  }
}

Status SocketStream::start_tls(const std::string& host, const TlsOptions& options) {
  if (fd_ < 0) return network_error("connection to " + peer_ + " is closed");
  if (tls_) return Status(ErrorKind::kInternal, "connection to " + peer_ + " is already TLS");
  ignore_sigpipe_once();
  if (!options.verify) internal::warn_insecure_tls(peer_);
  auto session = internal::TlsSession::create(fd_, host, peer_, options);
  if (!session.ok()) return session.status();
  Status s = handshake(**session);
  if (!s.ok()) {
    // The socket is mid-handshake and useless: later reads must fail, not misparse.
    ::close(fd_);
    fd_ = -1;
    return s;
  }
  tls_ = std::move(*session);
  return Status::Ok();
}

void SocketStream::close() {
  if (fd_ < 0) return;
  if (tls_ && !tls_broken_) {
    ERR_clear_error();
    SSL_shutdown(tls_->ssl());  // one non-blocking attempt at close_notify; best effort
  }
  tls_.reset();
  ERR_clear_error();
  ::close(fd_);
  fd_ = -1;
}

}  // namespace

Result<std::unique_ptr<Stream>> connect_tcp(const std::string& host, uint16_t port,
                                            const Timeouts& timeouts) {
  const Cancel* cancel = CancelScope::current();
  auto stopped = [&] { return cancel != nullptr && cancel->fired(); };
  if (stopped()) return Cancel::cancelled("connecting to " + host);
  // A name lookup is not woken by the Cancel: it ends within the connect time-out.
  auto addrs = resolve(host, port, timeouts.connect);
  if (stopped()) return Cancel::cancelled("looking up " + host);
  if (!addrs.ok()) return addrs.status();
  bool literal = internal::is_ip_literal(host);
  milliseconds timeout = timeouts.connect;
  std::vector<std::string> failures;
  for (const addrinfo* ai = addrs->get(); ai != nullptr; ai = ai->ai_next) {
    std::string where = host_port(address_text(ai->ai_addr), address_port(ai->ai_addr));
    if (!literal) where = host + " (" + where + ")";
    std::string why;
    int fd = connect_one(ai, where, timeout, why);
    if (fd >= 0) {
      return std::unique_ptr<Stream>(
          std::make_unique<SocketStream>(fd, host, port, milliseconds(timeouts.response)));
    }
    if (stopped()) return Cancel::cancelled("connecting to " + where);
    failures.push_back(std::move(why));
  }
  std::string message;
  for (const auto& f : failures) message += (message.empty() ? "" : "; ") + f;
  if (message.empty()) message = "no address to connect to for " + host;
  return network_error(message);
}

std::string server_address(const std::string& host, uint16_t port, const std::string& endpoint) {
  if (host.empty()) return endpoint.empty() ? "default endpoint" : endpoint;
  const std::string suffix = port == 0 ? "" : ":" + std::to_string(port);
  if (host.find("://") != std::string::npos) return host;
  if (host.front() == '[') return host.find("]:") != std::string::npos ? host : host + suffix;
  const auto colons = std::count(host.begin(), host.end(), ':');
  if (colons == 1) return host;  // "host:port" already
  return (colons > 1 ? "[" + host + "]" : host) + suffix;
}

Result<std::string> resolve_host(const std::string& host, uint16_t port,
                                 std::chrono::milliseconds timeout) {
  auto addrs = resolve(host, port, timeout);
  if (!addrs.ok()) return addrs.status();
  std::string out;
  std::set<std::string> seen;
  for (const addrinfo* ai = addrs->get(); ai != nullptr; ai = ai->ai_next) {
    std::string a = address_text(ai->ai_addr);
    if (!seen.insert(a).second) continue;
    out += (out.empty() ? "" : ", ") + a;
  }
  return out;
}

Result<std::unique_ptr<Stream>> connect_stream(const std::string& host, uint16_t port,
                                               Security security, const TlsOptions& tls,
                                               const Timeouts& timeouts) {
  auto stream = connect_tcp(host, port, timeouts);
  if (!stream.ok() || security != Security::kTls) return stream;
  // The handshake belongs to connection setup, so it runs on the connect timeout.
  (*stream)->set_timeout(timeouts.connect);
  MB_RETURN_IF_ERROR((*stream)->start_tls(host, tls));
  (*stream)->set_timeout(timeouts.response);
  return stream;
}

void internal::warn_insecure_tls(const std::string& peer) {
  g_insecure_sink.load()("TLS certificate verification is OFF for " + peer +
                         " (tls.verify = false): the server's identity is not checked and "
                         "the connection can be intercepted");
}

void set_insecure_tls_warning_sink(void (*sink)(const std::string& message)) {
  g_insecure_sink.store(sink != nullptr ? sink : &default_insecure_sink);
}

}  // namespace mb

namespace mb::internal {

void set_resolver(Resolver r) {
  Lookups& l = lookups();
  std::lock_guard lock(l.mu);
  l.resolver = std::move(r);
}

size_t pending_lookups() {
  Lookups& l = lookups();
  std::lock_guard lock(l.mu);
  return l.pending;
}

bool wait_for_no_pending_lookups(std::chrono::milliseconds timeout) {
  Lookups& l = lookups();
  std::unique_lock lock(l.mu);
  return l.idle.wait_for(lock, timeout, [&] { return l.pending == 0; });
}

}  // namespace mb::internal
