// File: core/internal/http_common.h — what core/http's two engines (cpprestsdk in http.cpp,
// libcurl in http_curl.cpp) share: the bounds of an exchange and how a URL is written in
// messages and logs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/http.h"

namespace mb::internal {

// The floor on throughput within an exchange: each byte received extends its deadline by
// 1/kHttpMinRate s, as for the mail protocols (core/line.h).
inline constexpr uint64_t kHttpMinRate = 64 * 1024;
// A response body kept in memory (no body_sink) is at most this large; JSON pages, SOAP
// answers and token answers are far smaller.
inline constexpr size_t kHttpMaxKeptBody = 64u << 20;

// "host:port", the IPv6 literal in brackets.
std::string http_host_port(const std::string& host, uint16_t port);
// "https://host:port/path" without the query, which may carry something private.
std::string loggable_url(const UrlParts& u);

}  // namespace mb::internal
