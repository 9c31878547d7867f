// File: connectors/ews/ews_folders.cpp — folders by distinguished name or display-name path
// (ews_folders.h).
#include "connectors/ews/ews_folders.h"

#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "connectors/ews/ews_requests.h"
#include "core/ascii.h"

namespace mb::ews {
namespace {

// One answer expected of a call about one folder.
// The answer, checked to hold one response message. The Response is returned whole: its
// document owns what the message's node points into.
Result<Response> one(Result<Response> r, const std::string& what) {
  if (!r.ok()) return r.status();
  if (r->messages.size() != 1) {
    return Status(ErrorKind::kProtocol, what + ": one answer expected", ErrorScope::kConnection);
  }
  return r;
}

}  // namespace

bool is_distinguished(const std::string& name) {
  // DistinguishedFolderIdNameType (types.xsd, Exchange 2013 SP1) — the ones mail can be in.
  static const std::set<std::string> kNames = {
      "archivedeleteditems", "archiveinbox",   "archivemsgfolderroot", "archiveroot",
      "conflicts",           "conversationhistory", "deleteditems",    "drafts",
      "inbox",               "junkemail",      "localfailures",        "msgfolderroot",
      "outbox",              "recoverableitemsdeletions", "root",      "sentitems",
      "serverfailures",      "syncissues"};
  return kNames.count(ascii_lower(name)) > 0;
}

void Folders::forget(const std::string& path) { cache_.erase(ascii_lower(path)); }

Result<std::string> Folders::resolve(const std::string& path, bool create) {
  const std::string key = ascii_lower(path);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  std::vector<std::string> parts = split_folder_path(path);
  if (parts.empty()) return Status(ErrorKind::kConfig, client_.who() + ": the folder name is empty");
  size_t i = 0;
  std::string first = ascii_lower(parts[0]);
  std::string cur_name = is_distinguished(first) ? parts[0] : "msgfolderroot";
  std::string cur = client_.folder(is_distinguished(first) ? first : "msgfolderroot");
  if (is_distinguished(first)) i = 1;
  for (; i < parts.size(); ++i) {
    auto found = find_child(cur, cur_name, parts[i]);
    if (!found.ok() && found.status().kind() == ErrorKind::kNotFound && create) {
      found = make_child(cur, cur_name, parts[i]);
    }
    if (!found.ok() && found.status().kind() == ErrorKind::kNotFound) {
      return Status(ErrorKind::kConfig,
                    fmt::format("{}: folder \"{}\" not found (no \"{}\" under {})", client_.who(),
                                path, parts[i], cur_name),
                    ErrorScope::kMailbox);
    }
    if (!found.ok()) return found.status();
    cur = *found;
    cur_name = parts[i];
  }
  cache_[key] = cur;
  return cur;
}

// The child of `parent_xml` named `name`: its FolderId element, or kNotFound.
Result<std::string> Folders::find_child(const std::string& parent_xml, const std::string& parent_name,
                                   const std::string& name) {
  const std::string what = fmt::format("{}: FindFolder under {}", client_.who(), parent_name);
  const std::string wanted = ascii_lower(name);
  for (size_t offset = 0;;) {
    auto r = one(client_.call("FindFolder", find_folder_request(parent_xml, offset), true), what);
    if (!r.ok()) return r.status();
    const ResponseMessage& m = r->messages[0];
    if (m.code == "ErrorFolderNotFound") {  // the parent went away meanwhile
      return Status(ErrorKind::kNotFound, what + ": " + m.text, ErrorScope::kMailbox);
    }
    MB_RETURN_IF_ERROR(message_status(m, what));
    FoundPage page = found_page(m.node);
    for (const auto& e : page.entries) {
      if (ascii_lower(e.name) == wanted) return folder_id_xml(e.id);
    }
    if (page.last || page.entries.empty()) break;
    offset += page.entries.size();
  }
  return Status(ErrorKind::kNotFound, what + ": no folder named " + name, ErrorScope::kMailbox);
}

Result<std::string> Folders::make_child(const std::string& parent_xml, const std::string& parent_name,
                                    const std::string& name) {
  const std::string what =
      fmt::format("{}: CreateFolder \"{}\" under {}", client_.who(), name, parent_name);
  // A repeat after a lost answer gets ErrorFolderExists, handled below.
  auto r = one(client_.call("CreateFolder", create_folder_request(parent_xml, name), true), what);
  if (!r.ok()) return r.status();
  const ResponseMessage& m = r->messages[0];
  if (m.code == "ErrorFolderExists") {
    auto again = find_child(parent_xml, parent_name, name);
    if (again.ok() || again.status().kind() != ErrorKind::kNotFound) return again;
  }
  MB_RETURN_IF_ERROR(message_status(m, what));
  std::string id = child(child(child(m.node, "Folders"), "Folder"), "FolderId").attribute("Id").value();
  if (id.empty()) {
    return Status(ErrorKind::kProtocol, what + ": no FolderId in the answer", ErrorScope::kConnection);
  }
  spdlog::info("{}: created folder \"{}\" under {}", client_.who(), name, parent_name);
  return folder_id_xml(id);
}

}  // namespace mb::ews
