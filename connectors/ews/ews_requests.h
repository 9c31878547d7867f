// File: connectors/ews/ews_requests.h — the operation elements the EWS mailbox sends to
// change and find things (pure functions over text, no I/O; the envelope is ews_soap.h's):
// UpdateItem message:IsRead, MoveItem, DeleteItem, FindFolder, CreateFolder and FindItem, and
// the answers' parts the mailbox reads back (folder ids, item ids, a FindItem page).
//
//   std::string body = ews::mark_read_request({"AAMkAD…", "AAMkAE…"});
//   auto r = client.call("UpdateItem", body, true);   // one response message per id, in order
//
// Folder arguments are the folder id element, already XML (Client::folder() for a
// distinguished folder, folder_id_xml() for one found by name). Item ids are escaped here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

namespace mb::ews {

// How DeleteItem deletes. kMoveToDeletedItems (the default of the mailbox) keeps the message
// where a person can restore it; kHardDelete removes it from the mailbox's store (kept only as
// long as single item recovery or a hold asks, then purged).
enum class DeleteType { kMoveToDeletedItems, kHardDelete };
std::string_view delete_type_name(DeleteType t);  // "MoveToDeletedItems", "HardDelete"

// How many item ids one request carries at most (Exchange accepts more; this keeps a request
// and its answer small and under EWS's throttling budgets).
inline constexpr size_t kMaxIdsPerRequest = 100;
// EWSFindCountLimit: the most entries Exchange returns for one FindItem or FindFolder page.
inline constexpr size_t kFindCountLimit = 1000;

// <t:FolderId Id="…"/>
std::string folder_id_xml(std::string_view id);

// UpdateItem, ConflictResolution="AlwaysOverwrite" (the read flag is ours to set whatever
// changed on the item since it was listed; the ids carry no ChangeKey),
// MessageDisposition="SaveOnly", SuppressReadReceipts="true" (a ticket system does not
// answer read-receipt requests): one ItemChange per id setting message:IsRead to true.
std::string mark_read_request(const std::vector<std::string>& ids);
// MoveItem of `ids` into the folder `to` (its id element).
std::string move_request(const std::vector<std::string>& ids, std::string_view to);
// DeleteItem DeleteType=… of `ids`.
std::string delete_request(const std::vector<std::string>& ids, DeleteType type);

// FindFolder Traversal="Shallow" (Default shape: id and display name) of the children of
// `parent`, one IndexedPageFolderView page from `offset`.
std::string find_folder_request(std::string_view parent, size_t offset);
// CreateFolder of one folder named `name` under `parent`.
std::string create_folder_request(std::string_view parent, std::string_view name);

// FindItem Traversal="Shallow", IdOnly, oldest first (item:DateTimeReceived ascending), one
// IndexedPageItemView page of at most `max` (≤ kFindCountLimit) entries from `offset`; with
// `unread_only` a Restriction message:IsRead = false.
std::string find_items_request(std::string_view folder, size_t offset, size_t max, bool unread_only);

// A page of FindItem or FindFolder (RootFolder).
struct FoundPage {
  struct Entry {
    std::string id;
    std::string name;  // FindFolder: DisplayName
  };
  std::vector<Entry> entries;
  bool last = true;  // IncludesLastItemInRange
};
// The RootFolder of a FindItem or FindFolder response message (its node).
FoundPage found_page(pugi::xml_node response_message);

}  // namespace mb::ews
