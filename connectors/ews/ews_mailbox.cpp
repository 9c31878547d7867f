// File: connectors/ews/ews_mailbox.cpp — one EWS folder as a Mailbox (ews_mailbox.h).
#include "connectors/ews/ews_mailbox.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <iterator>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "connectors/ews/ews_folders.h"
#include "connectors/ews/ews_report.h"

namespace mb::ews {
namespace {

constexpr size_t kMaxSyncChanges = 512;  // SyncFolderItems' own limit
constexpr std::string_view kFindState = "find:";

// What one batched call did to its items.
struct BatchOutcome {
  size_t failed = 0;
  Status first_failure;
  bool folder_gone = false;  // MoveItem: ErrorFolderNotFound (the target went away)
};

class EwsMailbox final : public Mailbox {
 public:
  EwsMailbox(MailboxOptions options, SignIn sign_in, HttpFactory http)
      : options_(std::move(options)),
        client_(options_.client, std::move(sign_in), std::move(http)),
        folders_(client_),
        find_mode_(options_.listing == Listing::kFind) {}

  ConnectionReport test_connection() override;
  Result<Pending> list_pending(size_t limit, const std::string& state) override;
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override;
  Status apply(const std::vector<std::string>& keys, const PostAction& action) override;
  Capabilities capabilities() const override { return Capabilities{.move = true}; }
  void close() override {}

 private:
  Result<std::string> source();
  Status source_gone(const ResponseMessage& m);
  Result<Pending> sync_once(const std::string& folder, size_t limit, const std::string& state);
  Result<Pending> list_sync(const std::string& folder, size_t limit, const std::string& state);
  Result<Pending> list_find(const std::string& folder, size_t limit, const std::string& state);
  Result<FoundPage> find_page(const std::string& folder, size_t offset, size_t max);
  Result<std::string> get_mime(const std::string& key);
  using Builder = std::function<std::string(const std::vector<std::string>&)>;
  Status batches(std::string_view op, const std::vector<std::string>& keys, const Builder& build,
                 BatchOutcome& out);
  Status judge(std::string_view op, const std::string& key, const ResponseMessage& m,
               BatchOutcome& out);
  // MoveItem into `path`; "" is the mailbox's Deleted Items (a delegate's delete).
  Status move(const std::vector<std::string>& keys, const std::string& path);
  std::string what(std::string_view op) const {
    return fmt::format("{}: {} {}", client_.who(), op, options_.folder);
  }

  MailboxOptions options_;
  Client client_;
  Folders folders_;
  bool find_mode_ = false;
  bool sync_refused_ = false;  // the last SyncFolderItems was refused for the folder
};

// The source folder's id element; a folder that does not exist is the configuration's error.
Result<std::string> EwsMailbox::source() {
  auto f = folders_.resolve(options_.folder, false);
  if (!f.ok() && f.status().kind() == ErrorKind::kConfig) {
    return Status(ErrorKind::kConfig, f.status().message() + "; check the mailbox's `folder`",
                  ErrorScope::kMailbox);
  }
  return f;
}

// ErrorFolderNotFound for the source folder (removed since it was resolved, or a
// distinguished folder this mailbox does not have): a configuration error naming the path.
Status EwsMailbox::source_gone(const ResponseMessage& m) {
  folders_.forget(options_.folder);
  return Status(ErrorKind::kConfig,
                fmt::format("{}: folder \"{}\" not found ({}: {}); check the mailbox's `folder`",
                            client_.who(), options_.folder, m.code, m.text),
                ErrorScope::kMailbox);
}

ConnectionReport EwsMailbox::test_connection() {
  auto folder = source();
  if (!folder.ok()) {
    ConnectionReport report;
    report.steps.push_back({std::string(failed_step(folder.status())), false,
                            folder.status().message()});
    report.status = folder.status();
    return report;
  }
  return folder_report(client_, options_.folder, *folder);
}

Result<Pending> EwsMailbox::sync_once(const std::string& folder, size_t limit, const std::string& state) {
  size_t max = std::clamp<size_t>(limit, 1, kMaxSyncChanges);
  const bool unread_only = options_.after.kind == PostAction::Kind::kMarkRead;
  std::string body = "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>";
  if (unread_only) {
    body += "<t:AdditionalProperties><t:FieldURI FieldURI=\"message:IsRead\"/></t:AdditionalProperties>";
  }
  body += "</m:ItemShape><m:SyncFolderId>" + folder + "</m:SyncFolderId>";
  if (!state.empty()) body += "<m:SyncState>" + xml_escape(state) + "</m:SyncState>";
  body += fmt::format("<m:MaxChangesReturned>{}</m:MaxChangesReturned></m:SyncFolderItems>", max);
  auto r = client_.call("SyncFolderItems", body, true);
  if (!r.ok()) return r.status();
  if (r->messages.size() != 1) {
    return Status(ErrorKind::kProtocol, what("SyncFolderItems") + ": one answer expected",
                  ErrorScope::kConnection);
  }
  const ResponseMessage& m = r->messages[0];
  if (m.code == "ErrorInvalidSyncStateData") return Status(ErrorKind::kNotFound, m.text);
  if (m.code == "ErrorFolderNotFound") return source_gone(m);
  if (m.code == "ErrorInvalidOperation" || m.code == "ErrorInvalidRequest") {
    sync_refused_ = true;
    return Status(ErrorKind::kRejected, m.code + ": " + m.text, ErrorScope::kMailbox);
  }
  MB_RETURN_IF_ERROR(message_status(m, what("SyncFolderItems")));
  Pending p;
  p.next_state = child_text(m.node, "SyncState");
  if (p.next_state.empty()) {
    return Status(ErrorKind::kProtocol, what("SyncFolderItems") + ": no SyncState in the answer",
                  ErrorScope::kConnection);
  }
  p.more = child_text(m.node, "IncludesLastItemInRange") == "false";
  for (pugi::xml_node change : child(m.node, "Changes").children()) {
    if (change.type() != pugi::node_element || local_name(change) != "Create") continue;
    for (pugi::xml_node item : change.children()) {
      if (unread_only && child_text(item, "IsRead") == "true") continue;
      std::string id = child(item, "ItemId").attribute("Id").value();
      if (!id.empty()) p.keys.push_back(std::move(id));
    }
  }
  return p;
}

Result<Pending> EwsMailbox::list_sync(const std::string& folder, size_t limit, const std::string& state) {
  auto p = sync_once(folder, limit, state);
  if (!p.ok() && p.status().kind() == ErrorKind::kNotFound && !state.empty()) {
    spdlog::warn("{}: Exchange no longer knows the stored SyncState ({}); synchronizing the "
                 "folder from the start (messages already imported are recognised and skipped)",
                 what("SyncFolderItems"), p.status().message());
    p = sync_once(folder, limit, "");
  }
  // One SyncFolderItems answer holds at most 512 changes: page on, each from the state the
  // last one returned, until `limit` keys or the end of the folder (Pending::more means more
  // than `limit` waiting, not a page boundary).
  while (p.ok() && p->more && p->keys.size() < limit) {
    auto next = sync_once(folder, limit - p->keys.size(), p->next_state);
    if (!next.ok()) {
      p = next.status();
      break;
    }
    p->keys.insert(p->keys.end(), std::make_move_iterator(next->keys.begin()),
                   std::make_move_iterator(next->keys.end()));
    p->next_state = std::move(next->next_state);
    p->more = next->more;
  }
  if (!p.ok() && p.status().kind() == ErrorKind::kNotFound) {
    return Status(ErrorKind::kProtocol, what("SyncFolderItems") + ": " + p.status().message(),
                  ErrorScope::kConnection);
  }
  return p;
}

Result<Pending> EwsMailbox::list_pending(size_t limit, const std::string& state) {
  auto folder = source();
  if (!folder.ok()) return folder.status();
  const bool find_state = state.rfind(kFindState, 0) == 0;
  if (find_mode_) return list_find(*folder, limit, find_state ? state : "");
  sync_refused_ = false;
  auto p = list_sync(*folder, limit, find_state ? "" : state);
  if (!p.ok() && sync_refused_) {
    spdlog::warn("{}: Exchange refuses SyncFolderItems for this folder ({}); reading it with "
                 "FindItem from now on", what("SyncFolderItems"), p.status().message());
    find_mode_ = true;
    return list_find(*folder, limit, find_state ? state : "");
  }
  return p;
}

Result<FoundPage> EwsMailbox::find_page(const std::string& folder, size_t offset, size_t max) {
  const bool unread_only = options_.after.kind == PostAction::Kind::kMarkRead;
  auto r = client_.call("FindItem", find_items_request(folder, offset, max, unread_only), true);
  if (!r.ok()) return r.status();
  if (r->messages.size() != 1) {
    return Status(ErrorKind::kProtocol, what("FindItem") + ": one answer expected", ErrorScope::kConnection);
  }
  if (r->messages[0].code == "ErrorFolderNotFound") return source_gone(r->messages[0]);
  MB_RETURN_IF_ERROR(message_status(r->messages[0], what("FindItem")));
  return found_page(r->messages[0].node);
}

// "find:<offset>:<ItemId listed last>" → its parts; {0, ""} for anything else.
std::pair<size_t, std::string> parse_find_state(const std::string& state) {
  if (state.rfind(kFindState, 0) != 0) return {0, ""};
  std::string_view rest = std::string_view(state).substr(kFindState.size());
  size_t colon = rest.find(':');
  size_t offset = 0;
  if (colon == std::string_view::npos) return {0, ""};
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + colon, offset);
  if (ec != std::errc() || end != rest.data() + colon || offset == 0) return {0, ""};
  return {offset, std::string(rest.substr(colon + 1))};
}

Result<Pending> EwsMailbox::list_find(const std::string& folder, size_t limit, const std::string& state) {
  const bool resume = options_.after.kind == PostAction::Kind::kLeave;
  auto [start, anchor] = resume ? parse_find_state(state) : std::pair<size_t, std::string>{0, ""};
  if (anchor.empty()) start = 0;
  const size_t page_max = std::clamp<size_t>(options_.find_page, 1, kFindCountLimit);
  Pending p;
  bool last = false;
  // With an anchor the page starts one before `start`, at the item listed last, to check it.
  size_t offset = start > 0 ? start - 1 : 0;
  bool check = start > 0;
  while (p.keys.size() < limit) {
    size_t want = std::min(page_max, limit - p.keys.size() + (check ? 1 : 0));
    auto page = find_page(folder, offset, want);
    if (!page.ok()) return page.status();
    auto& entries = page->entries;
    const bool got = !entries.empty();
    if (check) {
      check = false;
      if (entries.empty() || entries.front().id != anchor) {
        spdlog::info("{}: the folder changed above the stored position; listing it from the "
                     "top (messages already imported are recognised and skipped)", what("FindItem"));
        start = offset = 0;
        continue;
      }
      entries.erase(entries.begin());
      ++offset;
    }
    for (auto& e : entries) p.keys.push_back(std::move(e.id));
    offset += entries.size();
    last = page->last;
    if (last || !got) break;
  }
  p.more = !last;
  p.next_state = std::string(kFindState);
  const size_t position = start + p.keys.size();
  if (resume && position > 0) {
    p.next_state += fmt::format("{}:{}", position, p.keys.empty() ? anchor : p.keys.back());
  }
  return p;
}

Result<std::string> EwsMailbox::get_mime(const std::string& key) {
  std::string body = "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
                     "<t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape>"
                     "<m:ItemIds><t:ItemId Id=\"" + xml_escape(key) + "\"/></m:ItemIds></m:GetItem>";
  MimeStream mime(options_.max_message_bytes);
  auto r = client_.call("GetItem", body, true, &mime);
  if (!r.ok()) return r.status();
  if (r->messages.size() != 1) {
    return Status(ErrorKind::kProtocol, what("GetItem") + ": one answer expected", ErrorScope::kConnection);
  }
  MB_RETURN_IF_ERROR(message_status(r->messages[0], what("GetItem")));
  if (!mime.found()) {
    return Status(ErrorKind::kInvalidInput, what("GetItem") + ": the item has no MIME content",
                  ErrorScope::kMessage);
  }
  return mime.take_message();
}

Status EwsMailbox::fetch(const std::vector<std::string>& keys, const FetchCallback& cb) {
  for (const auto& key : keys) {
    auto raw = get_mime(key);
    if (!raw.ok() && raw.status().scope() != ErrorScope::kMessage) return raw.status();
    MB_RETURN_IF_ERROR(cb(key, std::move(raw)));
  }
  return Status::Ok();
}

// One item's response message: OK, gone already (OK), or an error that is kept in `out` —
// unless it concerns the whole call (throttling, sign-in), which is returned.
Status EwsMailbox::judge(std::string_view op, const std::string& key, const ResponseMessage& m,
                         BatchOutcome& out) {
  if (m.response_class == "Success" || m.code == "NoError") return Status::Ok();
  if (m.code == "ErrorItemNotFound") {
    spdlog::debug("{}: {}: item {} is gone already (an earlier run or a person moved or deleted it)",
                  client_.who(), op, key);
    return Status::Ok();
  }
  if (m.code == "ErrorFolderNotFound" && op == "MoveItem") out.folder_gone = true;
  Status s = message_status(m, fmt::format("{}: {} item {}", client_.who(), op, key));
  if (s.kind() == ErrorKind::kThrottled || s.kind() == ErrorKind::kAuth) return s;
  if (out.failed++ == 0) out.first_failure = std::move(s).with_scope(ErrorScope::kMessage);
  return Status::Ok();
}

// `keys` in requests of at most kMaxIdsPerRequest ids, each answered id by id.
Status EwsMailbox::batches(std::string_view op, const std::vector<std::string>& keys,
                           const Builder& build, BatchOutcome& out) {
  for (size_t i = 0; i < keys.size(); i += kMaxIdsPerRequest) {
    std::vector<std::string> ids(keys.begin() + static_cast<std::ptrdiff_t>(i),
                                 keys.begin() + static_cast<std::ptrdiff_t>(
                                                    std::min(keys.size(), i + kMaxIdsPerRequest)));
    // Each of these may be sent again: what was done already answers ErrorItemNotFound
    // (MoveItem, DeleteItem) or is done again to the same effect (UpdateItem).
    auto r = client_.call(op, build(ids), true);
    if (!r.ok()) return r.status();
    if (r->messages.size() != ids.size()) {
      return Status(ErrorKind::kProtocol,
                    fmt::format("{}: {}: {} answers to {} items", client_.who(), op,
                                r->messages.size(), ids.size()),
                    ErrorScope::kConnection);
    }
    for (size_t k = 0; k < ids.size(); ++k) MB_RETURN_IF_ERROR(judge(op, ids[k], r->messages[k], out));
  }
  return Status::Ok();
}

Status EwsMailbox::move(const std::vector<std::string>& keys, const std::string& path) {
  for (int attempt = 0;; ++attempt) {
    auto to = path.empty() ? Result<std::string>(client_.folder("deleteditems"))
                           : folders_.resolve(path, true);
    if (!to.ok()) return to.status();
    if (auto from = source(); from.ok() && *from == *to) {
      // Exchange would move each message to a new ItemId in the same folder, to be listed
      // (and imported) again.
      return Status(ErrorKind::kConfig,
                    fmt::format("{}: the move target \"{}\" is the folder being read", client_.who(), path),
                    ErrorScope::kMailbox);
    }
    BatchOutcome out;
    MB_RETURN_IF_ERROR(batches("MoveItem", keys,
                               [&](const std::vector<std::string>& ids) { return move_request(ids, *to); },
                               out));
    if (out.folder_gone && attempt == 0) {
      // The cached target was removed since it was found: find or make it again, once. The
      // items moved meanwhile answer ErrorItemNotFound the second time.
      folders_.forget(path);
      continue;
    }
    if (out.failed == 0) return Status::Ok();
    return Status(out.first_failure.kind(),
                  fmt::format("{} of {} items not moved (the others were): {}", out.failed,
                              keys.size(), out.first_failure.message()),
                  ErrorScope::kMessage);
  }
}

Status EwsMailbox::apply(const std::vector<std::string>& keys, const PostAction& action) {
  if (action.kind == PostAction::Kind::kLeave || keys.empty()) return Status::Ok();
  if (action.kind == PostAction::Kind::kMove) return move(keys, action.folder);
  if (action.kind == PostAction::Kind::kDelete &&
      options_.delete_type == DeleteType::kMoveToDeletedItems &&
      options_.client.access == Access::kDelegate) {
    return move(keys, "");  // a delegate's MoveToDeletedItems is refused
  }
  BatchOutcome out;
  std::string_view op = action.kind == PostAction::Kind::kMarkRead ? "UpdateItem" : "DeleteItem";
  Builder build = [&](const std::vector<std::string>& ids) {
    return action.kind == PostAction::Kind::kMarkRead ? mark_read_request(ids)
                                                      : delete_request(ids, options_.delete_type);
  };
  MB_RETURN_IF_ERROR(batches(op, keys, build, out));
  if (out.failed == 0) return Status::Ok();
  return Status(out.first_failure.kind(),
                fmt::format("{} of {} items failed (the others were done): {}", out.failed,
                            keys.size(), out.first_failure.message()),
                ErrorScope::kMessage);
}

}  // namespace

std::unique_ptr<Mailbox> make_ews_mailbox(MailboxOptions options, SignIn sign_in, HttpFactory http) {
  return std::make_unique<EwsMailbox>(std::move(options), std::move(sign_in), std::move(http));
}

}  // namespace mb::ews
