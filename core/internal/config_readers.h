// File: core/internal/config_readers.h — the readers that core/config*.cpp share: value
// readers (choices, durations, sizes, secret references, tls, timeouts, ports) and one
// reader per section of the file. Each reads into the Config being built and reports every
// problem through the Section's Checker (core/internal/toml_reader.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/connector_types.h"
#include "core/internal/toml_reader.h"

namespace mb::config_internal {

// Longest connect or response time-out, in seconds.
constexpr int64_t kMaxTimeout = 32767;

// --- values (core/config_values.cpp) ---
// "a | b | c", for messages.
std::string choice_list(std::initializer_list<const char*> allowed);
// Reads `key` as one of `allowed`; nullopt (after an error if it was another) otherwise.
std::optional<std::string> read_choice(Section& s, std::string_view key,
                                       std::initializer_list<const char*> allowed);
// Same, leaving `out` alone when absent or wrong.
void read_choice(Section& s, std::string_view key, std::initializer_list<const char*> allowed,
                 std::string& out);
// A TOML integer (seconds) or a string such as "30s", "2m", "1h", within min–max seconds.
std::optional<std::chrono::seconds> read_duration(Section& s, std::string_view key, int64_t min,
                                                  int64_t max);
// "50MB", "512k", or a plain number of bytes.
std::optional<int64_t> parse_size(const std::string& text);
// "env:NAME", "file:PATH" (made absolute) or a literal (warned about).
void read_secret(Section& s, std::string_view key, SecretRef& out);
// The [tls] and [timeouts] sub-tables of `parent`.
void read_tls(Section& parent, TlsOptions& tls);
void read_timeouts(Section& parent, Timeouts& out);
std::optional<uint16_t> read_port(Section& s);
// endpoint = "https://...".
void read_endpoint(Section& s, std::string& out);

// --- [[mailbox]] and [[sender]] (core/config_connections.cpp) ---
void read_mailbox(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                  Checker& c);
void read_sender(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                 Checker& c);

// check-config: a connector type this version does not implement would fail every time.
void check_implemented(Section& s, const ConnectorSpec& spec, const char* what);

// --- [[app]], [[project]], [[user]] (core/config_apps.cpp) ---
void read_app(const toml::table& t, size_t index, NameRegistry& names, Config& cfg, Checker& c);
void read_project(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                  Checker& c);
void read_user(const toml::table& t, size_t index, std::map<std::string, int>& seen, Config& cfg,
               Checker& c);

// --- the single tables (core/config_sections.cpp) ---
void read_store(Section& s, Config& cfg);
void read_ingest(Section& s, Config& cfg);
void read_filters(Section& s, Config& cfg);
void read_outbox(Section& s, Config& cfg);
void read_service(Section& s, Config& cfg);
// Read after [[project]], which alert.project refers to.
void read_monitor(Section& s, Config& cfg);

// --- cross-checks: what refers to other tables (core/config_checks.cpp) ---
// [tracking], read after [[mailbox]] and [[sender]].
void read_tracking(Section& s, Config& cfg);
// [auth], read after [[app]]: delegated apps need its key.
void read_auth_section(Section& s, Config& cfg);
// project = "..." must name a [[project]] when any is defined: false after an error.
bool check_project_ref(Section& s, const Config& cfg, const std::string& project);

}  // namespace mb::config_internal
