// File: core/config_values.cpp — readers of single values: choices, durations, sizes,
// secret references, the tls and timeouts tables, ports and endpoints; and the public
// parse_duration() and parse_post_action().
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "core/files.h"
#include "core/internal/config_readers.h"

namespace mb {
namespace config_internal {
namespace {

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '_';
  });
}

// check-config: a file: secret that cannot be read fails every connection that needs it.
void check_secret_file(Section& s, std::string_view key, const std::string& path) {
  auto data = read_regular_file(path, kMaxSecretFileBytes, s.full_key(key));
  if (!data.ok()) {
    s.error_at(key, data.status().message());
    return;
  }
  std::string v = *data;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (v.empty()) s.error(key, fmt::format("file {} is empty", path));
}

// check-config: an unset variable is only a warning, as the service may run with another
// environment than the shell that checks its configuration.
void check_secret_env(Section& s, std::string_view key, const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) {
    s.warn(key, fmt::format("names the environment variable {}, which is not set here (the "
                            "service needs it in its environment)", name));
  } else if (*v == '\0') {
    s.warn(key, fmt::format("names the environment variable {}, which is empty here", name));
  }
}

bool valid_pin(const std::string& pin) {
  if (pin.rfind("sha256/", 0) == 0) {
    std::string b64 = pin.substr(7);
    return b64.size() == 44 && b64.back() == '=' &&
           std::all_of(b64.begin(), b64.end() - 1, [](unsigned char ch) {
             return std::isalnum(ch) || ch == '+' || ch == '/';
           });
  }
  std::string hex;
  for (char ch : pin) {
    if (ch != ':') hex += ch;
  }
  return hex.size() == 64 && std::all_of(hex.begin(), hex.end(), [](unsigned char ch) {
           return std::isxdigit(ch);
         });
}

// check-config: tls.ca_file must be a readable file of PEM certificates, or every
// connection fails at the handshake.
void check_ca_file(Section& s, const std::string& path) {
  auto data = read_regular_file(path, kMaxCaFileBytes, s.full_key("ca_file"));
  if (!data.ok()) {
    s.error_at("ca_file", data.status().message());
  } else if (data->find("-----BEGIN CERTIFICATE-----") == std::string::npos &&
             data->find("-----BEGIN TRUSTED CERTIFICATE-----") == std::string::npos) {
    s.error("ca_file", fmt::format("file {} holds no PEM certificate (-----BEGIN "
                                   "CERTIFICATE-----)", path));
  }
}

std::optional<std::chrono::seconds> duration_seconds(Section& s, std::string_view key,
                                                     const toml::node& n) {
  if (n.is_integer()) return std::chrono::seconds(n.as_integer()->get());
  if (!n.is_string()) {
    s.error(key, fmt::format("must be a duration such as \"30s\" (got {})", type_name(n)));
    return std::nullopt;
  }
  auto d = parse_duration(n.as_string()->get());
  if (!d.ok()) {
    s.error(key, fmt::format("must be a duration such as \"30s\", \"2m\", \"1h\" (got {})",
                             dq(n.as_string()->get())));
    return std::nullopt;
  }
  return *d;
}

// False after a bad pin (the table's other keys then go unchecked, as before).
bool read_pins(Section& s, TlsOptions& tls) {
  auto v = s.strings("pins");
  if (!v) return true;
  for (const auto& pin : *v) {
    if (!valid_pin(pin)) {
      s.error("pins", fmt::format("entry {} is not \"sha256/BASE64\" or 64 hex digits", dq(pin)));
      return false;
    }
  }
  tls.pins = *v;
  return true;
}

}  // namespace

std::string choice_list(std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "" : " | ") + std::string(a);
  return list;
}

std::optional<std::string> read_choice(Section& s, std::string_view key,
                                       std::initializer_list<const char*> allowed) {
  auto v = s.str(key);
  if (!v) return std::nullopt;
  if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return *v == a; })) {
    s.error(key, fmt::format("must be {} (got {})", choice_list(allowed), dq(*v)));
    return std::nullopt;
  }
  return v;
}

void read_choice(Section& s, std::string_view key, std::initializer_list<const char*> allowed,
                 std::string& out) {
  if (auto v = read_choice(s, key, allowed)) out = *v;
}

std::optional<std::chrono::seconds> read_duration(Section& s, std::string_view key, int64_t min,
                                                  int64_t max) {
  const toml::node* n = s.node(key);
  if (!n) return std::nullopt;
  auto secs = duration_seconds(s, key, *n);
  if (!secs) return std::nullopt;
  if (secs->count() < min || secs->count() > max) {
    s.error(key, fmt::format("must be {}–{} seconds (got {})", min, max, secs->count()));
    return std::nullopt;
  }
  return secs;
}

std::optional<int64_t> parse_size(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
  if (pos == 0 || pos > 12) return std::nullopt;
  int64_t n = std::stoll(text.substr(0, pos));
  std::string unit = ascii_lower(text.substr(pos));
  if (unit.empty() || unit == "b") return n;
  if (unit == "k" || unit == "kb") return n * 1024;
  if (unit == "m" || unit == "mb") return n * 1024 * 1024;
  if (unit == "g" || unit == "gb") return n * 1024 * 1024 * 1024;
  return std::nullopt;
}

void read_secret(Section& s, std::string_view key, SecretRef& out) {
  auto v = s.str(key);
  if (!v) return;
  if (v->rfind("env:", 0) == 0) {
    if (!valid_env_name(std::string_view(*v).substr(4))) {
      s.error(key, "must name an environment variable after env: (letters, digits, _)");
      return;
    }
    out.ref = *v;
    if (s.checker().deep()) check_secret_env(s, key, v->substr(4));
  } else if (v->rfind("file:", 0) == 0) {
    if (v->size() == 5) {
      s.error(key, "must name a file after file:");
      return;
    }
    out.ref = "file:" + s.checker().resolve_path(v->substr(5));
    if (s.checker().deep()) check_secret_file(s, key, out.ref.substr(5));
  } else if (v->empty()) {
    s.error(key, "must not be empty (write \"env:NAME\" or \"file:PATH\")");
  } else {
    s.warn(key, "is written literally in the file; prefer \"env:NAME\" or \"file:PATH\"");
    out.ref = *v;
  }
}

void read_tls(Section& parent, TlsOptions& tls) {
  const toml::table* t = parent.table("tls");
  if (!t) return;
  Section s(*t, parent.context(), parent.checker(), "tls.");
  if (auto v = s.boolean("verify")) {
    tls.verify = *v;
    if (!*v) s.warn("verify", "= false: server certificates and host names are NOT checked");
  }
  if (auto v = s.str("ca_file")) {
    tls.ca_file = s.checker().resolve_path(*v);
    if (s.checker().deep() && tls.verify) check_ca_file(s, tls.ca_file);
  }
  if (auto v = s.str("min_version")) {
    if (*v == "1.2") tls.min_version = TlsVersion::k1_2;
    else if (*v == "1.3") tls.min_version = TlsVersion::k1_3;
    else s.error("min_version", fmt::format("must be \"1.2\" or \"1.3\" (got {})", dq(*v)));
  }
  if (read_pins(s, tls)) s.finish();
}

void read_timeouts(Section& parent, Timeouts& out) {
  const toml::table* t = parent.table("timeouts");
  if (!t) return;
  Section s(*t, parent.context(), parent.checker(), "timeouts.");
  if (auto d = read_duration(s, "connect", 1, kMaxTimeout)) out.connect = *d;
  if (auto d = read_duration(s, "response", 1, kMaxTimeout)) out.response = *d;
  s.finish();
}

std::optional<uint16_t> read_port(Section& s) {
  auto v = s.integer("port");
  if (!v) return std::nullopt;
  if (*v < 1 || *v > 65535) {
    s.error("port", fmt::format("must be 1–65535 (got {})", *v));
    return std::nullopt;
  }
  return static_cast<uint16_t>(*v);
}

void read_endpoint(Section& s, std::string& out) {
  auto v = s.str("endpoint");
  if (!v) return;
  if (v->rfind("https://", 0) != 0) {
    s.error("endpoint", fmt::format("must be an https:// URL (got {})", dq(*v)));
    return;
  }
  out = *v;
}

}  // namespace config_internal

Result<std::chrono::seconds> parse_duration(const std::string& text) {
  static const std::map<std::string, int64_t> kUnits = {
      {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
  size_t pos = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
  auto unit = kUnits.find(text.substr(pos));
  if (pos == 0 || pos > 9 || unit == kUnits.end()) {
    return Status(ErrorKind::kConfig,
                  fmt::format("invalid duration \"{}\" (write e.g. 30s, 2m, 1h)", text));
  }
  return std::chrono::seconds(std::stoll(text.substr(0, pos)) * unit->second);
}

Result<PostAction> parse_post_action(const std::string& text) {
  if (text == "mark-read") return PostAction::mark_read();
  if (text == "delete") return PostAction::remove();
  if (text == "leave") return PostAction::leave();
  if (text == "move") return PostAction::move("Processed");
  if (text.rfind("move:", 0) == 0 && text.size() > 5) return PostAction::move(text.substr(5));
  return Status(ErrorKind::kConfig,
                fmt::format("invalid action \"{}\" (mark-read | delete | move:FOLDER | leave)",
                            text));
}

}  // namespace mb
