// File: connectors/ews/ews_folders.h — a mailbox's folders by name, for the EWS mailbox: a
// distinguished folder name ("inbox", "deleteditems", …; any case) or a display-name path
// ("Inbox/Processed", "Projects/2026"). A path whose first part is a distinguished name starts
// there; any other starts at msgfolderroot (the top of the mailbox's mail folders). Each
// further part is found among its parent's children by FindFolder (Traversal="Shallow",
// paged by EWSFindCountLimit), its DisplayName compared without ASCII case as Exchange does;
// with `create`, a missing part is made by CreateFolder (and the parts after it), an
// ErrorFolderExists (made meanwhile by someone else) looked up again. Resolved folders are
// cached per object (per mailbox); forget() drops one that Exchange no longer knows.
//
//   ews::Folders folders(client);
//   auto to = folders.resolve("Inbox/Processed", true);   // <t:FolderId Id="…"/>
//
// Errors: a part not found (without `create`) → kConfig (scope mailbox) naming the path and
// the missing part; the calls' own errors as ews_client.h gives them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "connectors/ews/ews_client.h"
#include "core/status.h"

namespace mb::ews {

// Whether `name` (any case) is a DistinguishedFolderId name EWS knows.
bool is_distinguished(const std::string& name);

class Folders {
 public:
  explicit Folders(Client& client) : client_(client) {}

  // The folder id element of `path` (DistinguishedFolderId for a lone distinguished name,
  // with the delegate's Mailbox; FolderId otherwise).
  Result<std::string> resolve(const std::string& path, bool create);
  void forget(const std::string& path);

 private:
  Result<std::string> find_child(const std::string& parent_xml, const std::string& parent_name,
                            const std::string& name);
  Result<std::string> make_child(const std::string& parent_xml, const std::string& parent_name,
                             const std::string& name);

  Client& client_;
  std::map<std::string, std::string> cache_;  // lower-cased path → folder id element
};

}  // namespace mb::ews
