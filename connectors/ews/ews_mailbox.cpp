// File: connectors/ews/ews_mailbox.cpp — one EWS folder as a Mailbox (ews_mailbox.h).
#include "connectors/ews/ews_mailbox.h"

#include <algorithm>
#include <iterator>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "connectors/ews/ews_report.h"

namespace mb::ews {
namespace {

constexpr size_t kMaxSyncChanges = 512;  // SyncFolderItems' own limit

class EwsMailbox final : public Mailbox {
 public:
  EwsMailbox(MailboxOptions options, SignIn sign_in, HttpFactory http)
      : options_(std::move(options)),
        client_(options_.client, std::move(sign_in), std::move(http)) {}

  ConnectionReport test_connection() override;
  Result<Pending> list_pending(size_t limit, const std::string& state) override;
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override;
  Status apply(const std::vector<std::string>& keys, const PostAction& action) override;
  Capabilities capabilities() const override { return Capabilities{}; }
  void close() override {}

 private:
  Result<Pending> sync_once(size_t limit, const std::string& state);
  Result<std::string> get_mime(const std::string& key);
  std::string what(std::string_view op) const {
    return fmt::format("{}: {} {}", client_.who(), op, options_.folder);
  }

  MailboxOptions options_;
  Client client_;
};

ConnectionReport EwsMailbox::test_connection() {
  return folder_report(client_, options_.folder, client_.folder(options_.folder));
}

Result<Pending> EwsMailbox::sync_once(size_t limit, const std::string& state) {
  size_t max = std::clamp<size_t>(limit, 1, kMaxSyncChanges);
  std::string body = "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
                     "<m:SyncFolderId>" + client_.folder(options_.folder) + "</m:SyncFolderId>";
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
      std::string id = child(item, "ItemId").attribute("Id").value();
      if (!id.empty()) p.keys.push_back(std::move(id));
    }
  }
  return p;
}

Result<Pending> EwsMailbox::list_pending(size_t limit, const std::string& state) {
  auto p = sync_once(limit, state);
  if (!p.ok() && p.status().kind() == ErrorKind::kNotFound && !state.empty()) {
    spdlog::warn("{}: Exchange no longer knows the stored SyncState ({}); synchronizing the "
                 "folder from the start (messages already imported are recognised and skipped)",
                 what("SyncFolderItems"), p.status().message());
    p = sync_once(limit, "");
  }
  // One SyncFolderItems answer holds at most 512 changes: page on, each from the state the
  // last one returned, until `limit` keys or the end of the folder (Pending::more means more
  // than `limit` waiting, not a page boundary).
  while (p.ok() && p->more && p->keys.size() < limit) {
    auto next = sync_once(limit - p->keys.size(), p->next_state);
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

Status EwsMailbox::apply(const std::vector<std::string>& keys, const PostAction& action) {
  if (action.kind == PostAction::Kind::kLeave || keys.empty()) return Status::Ok();
  return Status(ErrorKind::kInternal,
                what("apply") + ": " + action.to_string() + " is not implemented for EWS yet");
}

}  // namespace

std::unique_ptr<Mailbox> make_ews_mailbox(MailboxOptions options, SignIn sign_in, HttpFactory http) {
  return std::make_unique<EwsMailbox>(std::move(options), std::move(sign_in), std::move(http));
}

}  // namespace mb::ews
