// File: core/config_sections.cpp — the single tables: [store], [ingest], [filters],
// [monitor] with [monitor.alert], [outbox] and [service].
#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "core/internal/config_readers.h"
#include "core/listen_address.h"

namespace mb::config_internal {
namespace {

namespace fs = std::filesystem;

// check-config: the store is created on first use, but its directory must exist.
void check_store_path(Section& s, const std::string& path) {
  std::error_code ec;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (fs::is_directory(path, ec)) {
    s.error_at("path", fmt::format("path {} is a directory; name the database file in it, e.g. "
                                   "{}/mailbridge.db", path, path));
  } else if (!fs::exists(dir, ec)) {
    s.error_at("path", fmt::format("path {}: the directory {} does not exist", path,
                                   dir.string()));
  } else if (!fs::is_directory(dir, ec)) {
    s.error_at("path", fmt::format("path {}: {} is not a directory", path, dir.string()));
  }
}

void read_filter_list(Section& s, std::string_view key, std::vector<std::string>& out) {
  auto v = s.strings(key);
  if (!v) return;
  for (const auto& rule : *v) {
    if (rule.size() < 2) {
      s.error(key, fmt::format("entry {} is too short (rules need at least 2 characters)",
                               dq(rule)));
      return;
    }
  }
  out = *v;
}

// The {name} placeholders a text uses that the alert template does not know, e.g. "{mailbx}".
std::string unknown_placeholder(const std::string& text) {
  static const std::set<std::string> kKnown = {"mailbox", "user", "host", "error", "failures"};
  for (size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
    size_t close = text.find('}', open);
    if (close == std::string::npos) break;
    std::string name = text.substr(open + 1, close - open - 1);
    bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char ch) {
      return std::isalnum(ch) || ch == '_';
    });
    if (word && !kKnown.count(name)) return "{" + name + "}";
  }
  return "";
}

void read_alert_text(Section& s, std::string_view key, std::string& out) {
  auto v = s.str(key);
  if (!v) return;
  if (v->empty()) {
    s.error(key, "must not be empty (leave it out for the default)");
    return;
  }
  if (std::string bad = unknown_placeholder(*v); !bad.empty()) {
    s.error(key, fmt::format("uses the unknown placeholder {} (known: {{mailbox}} {{user}} "
                             "{{host}} {{error}} {{failures}})", bad));
    return;
  }
  out = *v;
}

void read_alert(Section& parent, const Config& cfg, AlertTemplate& alert) {
  const toml::table* t = parent.table("alert");
  if (!t) return;
  Section s(*t, "[monitor.alert]", parent.checker());
  if (auto v = s.str("project")) {
    if (!check_project_ref(s, cfg, *v)) {
      // reported
    } else if (v->empty()) {
      s.error("project", "must not be empty (leave it out for the mailbox's project)");
    } else {
      alert.project = *v;
    }
  }
  read_alert_text(s, "subject", alert.subject);
  read_alert_text(s, "body", alert.body);
  read_alert_text(s, "requester", alert.requester);
  s.finish();
}

// max_message_bytes: a number of bytes or a size such as "50MB", at least 1024 bytes.
void read_max_message_bytes(Section& s, IngestConfig& in) {
  const toml::node* n = s.node("max_message_bytes");
  if (!n) return;
  std::optional<int64_t> size;
  if (n->is_integer()) size = n->as_integer()->get();
  else if (n->is_string()) size = parse_size(n->as_string()->get());
  if (!size || *size < 1024) {
    s.error("max_message_bytes", "must be a size of at least 1024 bytes, e.g. 52428800 or "
                                 "\"50MB\"");
  } else {
    in.max_message_bytes = static_cast<size_t>(*size);
  }
}

}  // namespace

void read_store(Section& s, Config& cfg) {
  if (auto v = s.str("path")) {
    if (v->empty()) s.error("path", "must not be empty");
    else cfg.store.path = *v;
  }
  cfg.store.path = s.checker().resolve_path(cfg.store.path);
  if (s.checker().deep()) check_store_path(s, cfg.store.path);
}

void read_ingest(Section& s, Config& cfg) {
  IngestConfig& in = cfg.ingest;
  if (auto v = s.strings("restricted_extensions")) {
    in.restricted_extensions.clear();
    for (std::string ext : *v) {
      if (!ext.empty() && ext.front() == '.') ext.erase(0, 1);
      if (ext.empty()) {
        s.error("restricted_extensions", "must not contain an empty extension");
        break;
      }
      in.restricted_extensions.push_back(ascii_lower(ext));
    }
  }
  if (auto v = s.integer("max_subject_length")) {
    if (*v < 1 || *v > 100000) {
      s.error("max_subject_length", fmt::format("must be 1–100000 (got {})", *v));
    } else {
      in.max_subject_length = static_cast<size_t>(*v);
    }
  }
  read_max_message_bytes(s, in);
}

void read_filters(Section& s, Config& cfg) {
  FilterConfig& f = cfg.filters;
  if (auto v = s.boolean("use_defaults")) f.use_defaults = *v;
  if (auto v = s.boolean("auto_replies")) f.auto_replies = *v;
  read_filter_list(s, "senders", f.senders);
  read_filter_list(s, "subjects", f.subjects);
  read_choice(s, "accept_from",
              {"everyone", "requestors", "technicians", "requestors-and-technicians"},
              f.accept_from);
}

void read_monitor(Section& s, Config& cfg) {
  if (auto v = s.integer("auth_failure_threshold")) {
    if (*v < 1 || *v > 100) {
      s.error("auth_failure_threshold", fmt::format("must be 1–100 (got {})", *v));
    } else {
      cfg.monitor.auth_failure_threshold = static_cast<uint32_t>(*v);
    }
  }
  // At least a minute, so that a paused mailbox can never be driven into a lock-out.
  if (auto d = read_duration(s, "auth_retry_interval", 60, 7 * 24 * 3600)) {
    cfg.monitor.auth_retry_interval = *d;
  }
  read_alert(s, cfg, cfg.monitor.alert);
}

// [outbox]: the retry schedule of outgoing mail.
void read_outbox(Section& s, Config& cfg) {
  OutboxConfig& o = cfg.outbox;
  if (auto d = read_duration(s, "retry_initial", 1, 86400)) o.retry_initial = *d;
  if (auto d = read_duration(s, "retry_max", 1, 7 * 86400)) o.retry_max = *d;
  if (o.retry_max < o.retry_initial) {
    s.error("retry_max", "must not be shorter than retry_initial");
  }
  if (auto v = s.integer("max_attempts")) {
    if (*v < 1 || *v > 100) s.error("max_attempts", fmt::format("must be 1–100 (got {})", *v));
    else o.max_attempts = static_cast<uint32_t>(*v);
  }
  if (auto v = s.integer("batch")) {
    if (*v < 1 || *v > 10000) s.error("batch", fmt::format("must be 1–10000 (got {})", *v));
    else o.batch = static_cast<uint32_t>(*v);
  }
  std::string in_doubt = "sent";
  read_choice(s, "in_doubt", {"sent", "resend", "park"}, in_doubt);
  o.in_doubt = in_doubt == "resend" ? InDoubt::kResend
               : in_doubt == "park" ? InDoubt::kPark
                                    : InDoubt::kSent;
}

// [service]: metrics = "HOST:PORT" on loopback only (the endpoint has no authentication).
void read_service(Section& s, Config& cfg) {
  auto v = s.str("metrics");
  if (!v) return;
  auto address = parse_loopback_listen(*v);
  if (!address.ok()) {
    s.error("metrics", address.status().message());
  } else if (address->port == 0) {
    s.error("metrics", fmt::format("needs a port of 1–65535; got {}", dq(*v)));
  } else {
    cfg.service.metrics = *v;
  }
}

}  // namespace mb::config_internal
