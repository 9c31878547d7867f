// File: connectors/graph/graph_mailbox.cpp — the Graph Mailbox: folders by well-known name or
// display-name path, the messages delta query as incremental state, $value downloads (up to
// the mailbox's concurrency, handed over in order), PATCH isRead / move / DELETE.
//
// Sizes: the delta listing asks for each message's PidTagMessageSize (MAPI 0x0E08, through
// $expand=singleValueExtendedProperties), so a message the server says is over
// max_message_bytes is reported kTooLarge without its $value being downloaded. A message
// listed without that property is downloaded with the download cut at the limit.
//
// State (Pending::next_state) is "<folder id> <link>": the @odata.deltaLink of a finished
// round, or the @odata.nextLink where a max_per_poll-limited listing stopped, so that the next
// poll resumes there. A state of another folder (the configuration changed) or one Graph
// resets (410 Gone, syncStateNotFound, resyncRequired) starts a full round again; the
// ingest ledger recognises the messages it already has, so no ticket is made twice.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include "connectors/graph/graph.h"
#include "connectors/graph/graph_client.h"
#include "core/ascii.h"
#include "core/cancel.h"

namespace mb {
namespace {

using graph::GraphCall;
using graph::GraphClient;
using graph::segment;
using json = nlohmann::json;

constexpr const char* kFolderSelect = "$select=id,displayName,totalItemCount,unreadItemCount";

// What the delta listing asks for: the fields the ingest orders and filters by, and the
// message size (PidTagMessageSize, a Long at tag 0x0E08: Microsoft's "Get
// singleValueLegacyExtendedProperty" with $expand and a $filter on the id).
constexpr const char* kDeltaQuery =
    "$select=id,isRead,receivedDateTime"
    "&$expand=singleValueExtendedProperties($filter=id%20eq%20'Long%200x0E08')";

bool is_well_known(const std::string& lowered) {
  static const std::set<std::string> kNames = {
      "archive",    "clutter",     "conflicts",  "conversationhistory",
      "deleteditems", "drafts",    "inbox",      "junkemail",
      "localfailures", "msgfolderroot", "outbox", "recoverableitemsdeletions",
      "scheduled",  "searchfolders", "sentitems", "serverfailures",
      "syncissues"};
  return kNames.count(lowered) > 0;
}

std::string str_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t count_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// PidTagMessageSize from a listed message, if Graph sent it. Graph writes the id back in its
// own spelling ("Long 0xe08"), so the tag is compared as a number; the value is a string.
std::optional<uint64_t> message_size(const json& item) {
  auto props = item.find("singleValueExtendedProperties");
  if (props == item.end() || !props->is_array()) return std::nullopt;
  for (const auto& p : *props) {
    if (!p.is_object()) continue;
    std::string id = ascii_lower(str_field(p, "id"));
    const size_t space = id.find(' ');
    if (space == std::string::npos || id.substr(0, space) != "long") continue;
    std::string tag = id.substr(space + 1);
    if (tag.rfind("0x", 0) != 0 || tag.size() < 3 || tag.size() > 10) continue;
    char* end = nullptr;
    unsigned long n = std::strtoul(tag.c_str() + 2, &end, 16);
    if (end == nullptr || *end != '\0' || n != 0x0E08) continue;
    std::string value = str_field(p, "value");
    if (value.empty() || value.size() > 19 ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    return std::stoull(value);
  }
  return std::nullopt;
}

struct Folder {
  std::string id;
  std::string name;
  uint64_t total = 0;
  uint64_t unread = 0;
};

Folder folder_from(const json& j) {
  return {str_field(j, "id"), str_field(j, "displayName"), count_field(j, "totalItemCount"),
          count_field(j, "unreadItemCount")};
}

bool is_reset(const graph::GraphError& e) {
  const std::string code = ascii_lower(e.code);
  return e.status == 410 || code == "syncstatenotfound" || code == "resyncrequired" ||
         code == "syncstateinvalid";
}

class GraphMailbox final : public Mailbox {
 public:
  GraphMailbox(MailboxConfig cfg, std::string service, SignIn sign_in,
               std::unique_ptr<HttpClient> http, GraphTuning tuning)
      : cfg_(std::move(cfg)),
        client_(std::move(service), cfg_.user, "mailbox " + cfg_.name, std::move(sign_in),
                std::move(http), std::move(tuning), cfg_.max_concurrency) {}

  ConnectionReport test_connection() override;
  Result<Pending> list_pending(size_t limit, const std::string& state) override;
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override;
  Status apply(const std::vector<std::string>& keys, const PostAction& action) override;
  Capabilities capabilities() const override { return {false, true, true}; }
  void close() override {}

 private:
  Result<json> get_json(const std::string& target, const std::string& what);
  Result<Folder> resolve(const std::string& path, bool create);
  Result<Folder> well_known(const std::string& name);
  Result<std::optional<Folder>> child(const Folder& parent, const std::string& name);
  Result<Folder> create_child(const Folder& parent, const std::string& name);
  Result<Pending> list_delta(size_t limit, const Folder& folder, std::string url, bool* reset);
  Result<std::string> download(const std::string& key);
  Status fetch_sequential(const std::vector<std::string>& keys, const FetchCallback& cb);
  Status apply_one(const std::string& key, const PostAction& action, const std::string& dest);

  MailboxConfig cfg_;
  GraphClient client_;
  std::map<std::string, Folder> folders_;  // lower-cased path → folder
  // The server's size of each message of the last listing that came with one; written by
  // list_pending only, read by the downloads of the fetch that follows.
  std::map<std::string, uint64_t> sizes_;
};

Result<json> GraphMailbox::get_json(const std::string& target, const std::string& what) {
  auto r = client_.call({.method = "GET", .target = target, .what = what});
  if (!r.ok()) return r.status();
  if (r->status != 200) return client_.error_status(*r, what).with_scope(ErrorScope::kMailbox);
  json body = json::parse(r->body, nullptr, false);
  if (!body.is_object()) {
    return Status(ErrorKind::kProtocol, client_.who() + ": " + what + ": not a JSON object",
                  ErrorScope::kMailbox);
  }
  return body;
}

Result<Folder> GraphMailbox::well_known(const std::string& name) {
  auto j = get_json(client_.user_path() + "/mailFolders/" + name + "?" + kFolderSelect,
                    "GET mailFolders/" + name);
  if (!j.ok()) return j.status();
  return folder_from(*j);
}

Result<std::optional<Folder>> GraphMailbox::child(const Folder& parent, const std::string& name) {
  std::string target = client_.user_path() + "/mailFolders/" + segment(parent.id) +
                       "/childFolders?" + kFolderSelect + "&$top=100";
  const std::string wanted = ascii_lower(name);
  while (!target.empty()) {
    if (target.rfind("http", 0) == 0 && !client_.is_own_url(target)) {
      return Status(ErrorKind::kProtocol, client_.who() + ": Graph paged to another host",
                    ErrorScope::kMailbox);
    }
    auto j = get_json(target, "GET childFolders of " + parent.name);
    if (!j.ok()) return j.status();
    for (const auto& item : (*j)["value"]) {
      if (item.is_object() && ascii_lower(str_field(item, "displayName")) == wanted) {
        return std::optional<Folder>(folder_from(item));
      }
    }
    target = str_field(*j, "@odata.nextLink");
  }
  return std::optional<Folder>();
}

Result<Folder> GraphMailbox::create_child(const Folder& parent, const std::string& name) {
  const std::string what = "create folder " + name + " under " + parent.name;
  auto r = client_.call({.method = "POST",
                         .target = client_.user_path() + "/mailFolders/" + segment(parent.id) +
                                   "/childFolders",
                         .body = json{{"displayName", name}}.dump(),
                         .content_type = "application/json",
                         .what = what,
                         .repeatable = true});  // a repeat gets 409, handled below
  if (!r.ok()) return r.status();
  if (r->status == 409) {  // created meanwhile by another run or a person
    auto again = child(parent, name);
    if (!again.ok()) return again.status();
    if (*again) return **again;
  }
  if (r->status != 201 && r->status != 200) {
    return client_.error_status(*r, what).with_scope(ErrorScope::kMailbox);
  }
  spdlog::info("{}: created folder {} under {}", client_.who(), name, parent.name);
  return folder_from(json::parse(r->body, nullptr, false));
}

Result<Folder> GraphMailbox::resolve(const std::string& path, bool create) {
  const std::string key = ascii_lower(path);
  if (auto it = folders_.find(key); it != folders_.end()) return it->second;
  std::vector<std::string> parts = split_folder_path(path);
  if (parts.empty()) {
    return Status(ErrorKind::kConfig, client_.who() + ": folder name is empty");
  }
  size_t i = 0;
  std::string first = ascii_lower(parts[0]);
  auto root = well_known(is_well_known(first) ? first : "msgfolderroot");
  if (!root.ok()) return root.status();
  if (is_well_known(first)) i = 1;
  Folder cur = *root;
  for (; i < parts.size(); ++i) {
    auto found = child(cur, parts[i]);
    if (!found.ok()) return found.status();
    if (*found) {
      cur = **found;
      continue;
    }
    if (!create) {
      return Status(ErrorKind::kNotFound,
                    fmt::format("{}: folder {} not found (no \"{}\" under {})", client_.who(),
                                path, parts[i], cur.name),
                    ErrorScope::kMailbox);
    }
    auto made = create_child(cur, parts[i]);
    if (!made.ok()) return made.status();
    cur = *made;
  }
  folders_[key] = cur;
  return cur;
}

ConnectionReport GraphMailbox::test_connection() {
  ConnectionReport rep;
  auto step = [&](const char* name, const Status& s, const std::string& detail) {
    rep.steps.push_back(StepReport{name, s.ok(), s.ok() ? detail : s.message()});
    if (!s.ok() && rep.status.ok()) rep.status = s;
    return s.ok();
  };
  const SignIn& sign_in = client_.sign_in();
  Status token = sign_in.oauth()
                     ? sign_in.with_token([](const std::string&) { return Status::Ok(); })
                     : Status(ErrorKind::kConfig, "Microsoft Graph needs auth = \"oauth2\"");
  std::string detail = sign_in.describe ? sign_in.describe() : "access token obtained";
  if (!step("token", token, detail)) return rep;
  auto inbox = well_known("inbox");
  if (!step("mailbox", inbox.status(),
            inbox.ok() ? fmt::format("{} reachable ({} messages in Inbox)", cfg_.user,
                                     inbox->total)
                       : "")) {
    return rep;
  }
  folders_.clear();
  auto f = resolve(cfg_.folder, false);
  if (!step("open-folder", f.status(),
            f.ok() ? fmt::format("{} (\"{}\", id {})", cfg_.folder, f->name, f->id) : "")) {
    return rep;
  }
  step("count", Status::Ok(),
       fmt::format("{} messages in {} ({} unread)", f->total, cfg_.folder, f->unread));
  rep.message_count = f->total;
  return rep;
}

Result<Pending> GraphMailbox::list_pending(size_t limit, const std::string& state) {
  auto f = resolve(cfg_.folder, false);
  if (!f.ok()) return f.status();
  const std::string full =
      client_.user_path() + "/mailFolders/" + segment(f->id) + "/messages/delta?" + kDeltaQuery;
  sizes_.clear();
  std::string url = full;
  const size_t space = state.find(' ');
  if (!state.empty()) {
    if (space != std::string::npos && state.substr(0, space) == f->id &&
        client_.is_own_url(state.substr(space + 1))) {
      url = state.substr(space + 1);
    } else {
      spdlog::info("{}: stored sync state is for another folder or service; starting a full "
                   "synchronization of {}", client_.who(), cfg_.folder);
    }
  }
  bool reset = false;
  auto listed = list_delta(limit, *f, url, &reset);
  if (!listed.ok() && reset && url != full) {
    spdlog::warn("{}: Graph reset the delta state ({}); starting a full synchronization "
                 "(messages already imported are recognised, none is imported twice)",
                 client_.who(), listed.status().message());
    return list_delta(limit, *f, full, &reset);
  }
  return listed;
}

Result<Pending> GraphMailbox::list_delta(size_t limit, const Folder& folder, std::string url,
                                         bool* reset) {
  const bool unread_only = cfg_.after.kind == PostAction::Kind::kMarkRead;
  const std::string prefer =
      fmt::format("odata.maxpagesize={}", std::clamp<size_t>(limit, 1, 1000));
  std::vector<std::pair<std::string, std::string>> items;  // (receivedDateTime, id)
  std::set<std::string> seen;
  std::set<std::string> removed;
  Pending p;
  for (;;) {
    if (!client_.is_own_url(client_.url(url))) {
      return Status(ErrorKind::kProtocol, client_.who() + ": Graph linked to another host",
                    ErrorScope::kMailbox);
    }
    auto r = client_.call({.target = url, .headers = {{"Prefer", prefer}},
                           .what = "GET messages delta"});
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      graph::GraphError e = graph::parse_error(*r);
      *reset = is_reset(e);
      return client_.error_status(*r, "GET messages delta").with_scope(ErrorScope::kMailbox);
    }
    json body = json::parse(r->body, nullptr, false);
    if (!body.is_object() || !body.contains("value") || !body["value"].is_array()) {
      return Status(ErrorKind::kProtocol, client_.who() + ": delta page without \"value\"",
                    ErrorScope::kMailbox);
    }
    for (const auto& item : body["value"]) {
      std::string id = item.is_object() ? str_field(item, "id") : "";
      if (id.empty()) continue;
      if (item.contains("@removed")) {
        removed.insert(id);
        continue;
      }
      removed.erase(id);
      auto read = item.find("isRead");
      if (unread_only && read != item.end() && read->is_boolean() && read->get<bool>()) continue;
      if (auto size = message_size(item)) sizes_[id] = *size;
      if (seen.insert(id).second) items.emplace_back(str_field(item, "receivedDateTime"), id);
    }
    std::string delta = str_field(body, "@odata.deltaLink");
    std::string next = str_field(body, "@odata.nextLink");
    if (!delta.empty()) {
      p.next_state = folder.id + " " + delta;
      break;
    }
    if (next.empty()) {
      return Status(ErrorKind::kProtocol,
                    client_.who() + ": delta page with neither nextLink nor deltaLink",
                    ErrorScope::kMailbox);
    }
    url = next;
    if (items.size() >= limit) {
      p.next_state = folder.id + " " + next;
      p.more = true;
      break;
    }
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [when, id] : items) {
    if (!removed.count(id)) p.keys.push_back(std::move(id));
  }
  if (!removed.empty()) spdlog::debug("{}: {} removals in delta", client_.who(), removed.size());
  return p;
}

// Exchange's word that this one item's content cannot be read or converted to MIME (often
// with HTTP 500, which otherwise means "Graph's side, try the mailbox later"): the message is
// unreadable (core/mailbox.h), and the messages behind it still come.
bool item_unreadable(const graph::GraphError& e) {
  static const std::set<std::string> kCodes = {
      "errorcorruptdata", "erroritemcorrupt", "errormimecontentconversionfailed",
      "errormimecontentinvalid", "errormimecontentinvalidbase64string",
      "errorcontentconversionfailed"};
  return kCodes.count(ascii_lower(e.code)) > 0;
}

Result<std::string> GraphMailbox::download(const std::string& key) {
  if (auto it = sizes_.find(key); it != sizes_.end() && it->second > cfg_.max_message_bytes) {
    return Status(ErrorKind::kTooLarge,
                  fmt::format("{}: message {} is {} bytes by the server's count, over "
                              "max_message_bytes ({}); not downloaded",
                              client_.who(), key, it->second, cfg_.max_message_bytes),
                  ErrorScope::kMessage);
  }
  std::string data;
  const std::string what = "GET message $value";
  auto r = client_.call({.target = client_.user_path() + "/messages/" + segment(key) + "/$value",
                         .sink = &data,
                         .sink_limit = cfg_.max_message_bytes,
                         .what = what});
  if (!r.ok()) return r.status();
  if (r->status == 200) return data;
  Status s = client_.error_status(*r, what + " of " + key);
  if (item_unreadable(graph::parse_error(*r))) {
    return Status(ErrorKind::kInvalidInput, s.message(), ErrorScope::kMessage);
  }
  return std::move(s).with_scope(r->status >= 500 ? ErrorScope::kMailbox : ErrorScope::kMessage);
}

Status GraphMailbox::fetch_sequential(const std::vector<std::string>& keys,
                                      const FetchCallback& cb) {
  for (const auto& key : keys) {
    auto raw = download(key);
    if (!raw.ok() && raw.status().scope() != ErrorScope::kMessage) return raw.status();
    MB_RETURN_IF_ERROR(cb(key, std::move(raw)));
  }
  return Status::Ok();
}

Status GraphMailbox::fetch(const std::vector<std::string>& keys, const FetchCallback& cb) {
  const size_t n = keys.size();
  const size_t width = std::min(n, client_.concurrency());
  if (width <= 1) return fetch_sequential(keys, cb);
  // Downloads run ahead of the callback by at most `width` messages, so memory stays bounded
  // while the callback still sees the keys in the order asked.
  std::vector<std::optional<Result<std::string>>> slots(n);
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0;
  size_t delivered = 0;
  bool stop = false;
  // The downloads answer to the caller's Cancel (core/cancel.h), as its own requests do.
  Cancel* cancel = CancelScope::current();
  auto worker = [&] {
    CancelScope scope(cancel);
    for (;;) {
      size_t i = 0;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || next >= n || next < delivered + width; });
        if (stop || next >= n) return;
        i = next++;
      }
      auto r = download(keys[i]);
      {
        std::lock_guard lock(mu);
        slots[i] = std::move(r);
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  try {
    for (size_t w = 0; w < width; ++w) threads.emplace_back(worker);
  } catch (const std::system_error& e) {
    spdlog::warn("{}: fewer parallel downloads than wanted: {}", client_.who(), e.what());
  }
  Status out;
  if (threads.empty()) out = fetch_sequential(keys, cb);
  for (size_t d = 0; d < n && !threads.empty(); ++d) {
    std::optional<Result<std::string>> r;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return slots[d].has_value(); });
      r = std::move(slots[d]);
      slots[d].reset();
    }
    if (!r->ok() && r->status().scope() != ErrorScope::kMessage) {
      out = r->status();
      break;
    }
    Status s = cb(keys[d], std::move(*r));
    {
      std::lock_guard lock(mu);
      delivered = d + 1;
    }
    cv.notify_all();
    if (!s.ok()) {
      out = s;
      break;
    }
  }
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  return out;
}

Status GraphMailbox::apply_one(const std::string& key, const PostAction& action,
                               const std::string& dest) {
  GraphCall c;
  c.target = client_.user_path() + "/messages/" + segment(key);
  switch (action.kind) {
    case PostAction::Kind::kMarkRead:
      c.method = "PATCH";
      c.body = R"({"isRead":true})";
      c.what = "PATCH isRead";
      break;
    case PostAction::Kind::kDelete:
      c.method = "DELETE";
      c.what = "DELETE message";
      break;
    case PostAction::Kind::kMove:
      c.method = "POST";
      c.target += "/move";
      c.body = json{{"destinationId", dest}}.dump();
      c.what = "move message to " + action.folder;
      c.repeatable = true;  // the ImmutableId stays: a repeat leaves it where it is
      break;
    default:
      return Status::Ok();
  }
  if (!c.body.empty()) c.content_type = "application/json";
  auto r = client_.call(c);
  if (!r.ok()) return r.status();
  if (r->status >= 200 && r->status < 300) return Status::Ok();
  if (r->status == 404) {
    // Gone already (an interrupted run did it, or a person): what we wanted is true.
    spdlog::debug("{}: {}: message {} is already gone", client_.who(), c.what, key);
    return Status::Ok();
  }
  Status s = client_.error_status(*r, c.what + " " + key);
  return std::move(s).with_scope(r->status >= 500 ? ErrorScope::kMailbox : ErrorScope::kMessage);
}

Status GraphMailbox::apply(const std::vector<std::string>& keys, const PostAction& action) {
  if (action.kind == PostAction::Kind::kLeave || keys.empty()) return Status::Ok();
  std::string dest;
  if (action.kind == PostAction::Kind::kMove) {
    auto f = resolve(action.folder, true);
    if (!f.ok()) return f.status();
    dest = f->id;
  }
  return graph::run_parallel(keys.size(), client_.concurrency(), [&](size_t i) {
    return apply_one(keys[i], action, dest);
  });
}

}  // namespace

std::unique_ptr<Mailbox> make_graph_mailbox(const MailboxConfig& config, std::string service,
                                            SignIn sign_in, GraphHttpFactory http,
                                            GraphTuning tuning) {
  return std::make_unique<GraphMailbox>(config, std::move(service), std::move(sign_in),
                                        graph::make_http(http, config.tls, config.timeouts),
                                        std::move(tuning));
}

std::unique_ptr<Mailbox> make_graph_mailbox(const MailboxConfig& config, std::string service,
                                            SignIn sign_in, GraphHttpFactory http) {
  return make_graph_mailbox(config, std::move(service), std::move(sign_in), std::move(http),
                            GraphTuning{});
}

}  // namespace mb
