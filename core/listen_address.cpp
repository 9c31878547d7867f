// File: core/listen_address.cpp — parse_loopback_listen.
#include "core/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace mb {
namespace {

Status refuse(const std::string& text, const std::string& why) {
  return Status(ErrorKind::kInvalidInput,
                "must be a loopback address and port such as \"127.0.0.1:9464\", "
                "\"[::1]:9464\" or \"localhost:9464\"; got \"" + text + "\": " + why);
}

bool is_loopback_v4(const std::string& host) {
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

bool is_loopback_v6(const std::string& host) {
  in6_addr a{};
  if (::inet_pton(AF_INET6, host.c_str(), &a) != 1) return false;
  return std::memcmp(&a, &in6addr_loopback, sizeof a) == 0;
}

}  // namespace

Result<ListenAddress> parse_loopback_listen(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return refuse(text, "no port");
  }
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return refuse(text, "the port must be a number 0–65535");
  }
  ListenAddress a;
  a.port = static_cast<uint16_t>(port);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    a.ipv6 = true;
    a.host = host.substr(1, host.size() - 2);
    if (!is_loopback_v6(a.host)) return refuse(text, a.host + " is not the loopback address ::1");
    return a;
  }
  if (host == "localhost") {
    a.host = "127.0.0.1";
    return a;
  }
  if (host.find(':') != std::string::npos) {
    return refuse(text, "write an IPv6 address in brackets, e.g. \"[::1]:9464\"");
  }
  if (!is_loopback_v4(host)) {
    return refuse(text, (host.empty() ? std::string("no host") : host) +
                            " is not a loopback address (127.0.0.0/8, ::1, localhost); the "
                            "endpoint has no authentication");
  }
  a.host = host;
  return a;
}

}  // namespace mb
