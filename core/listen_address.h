// File: core/listen_address.h — "HOST:PORT" for a server that must listen on loopback only
// (the metrics endpoint, `[service] metrics`).
//
// HOST is an IPv4 address in 127.0.0.0/8, "[::1]" (IPv6 in brackets) or "localhost" (taken
// as 127.0.0.1, not looked up: /etc/hosts could name another address). Anything else is
// refused: what is served there has no authentication.
//
//   auto a = parse_loopback_listen("127.0.0.1:9464");  // {AF_INET, "127.0.0.1", 9464}
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace mb {

struct ListenAddress {
  bool ipv6 = false;
  std::string host;  // numeric: "127.0.0.1", "::1"
  uint16_t port = 0;
};

// kInvalidInput, with a message fit to follow the key's name ("must be …; got …"), for text
// that is not a loopback HOST:PORT. Port 0 (any free port) is accepted.
Result<ListenAddress> parse_loopback_listen(const std::string& text);

}  // namespace mb
