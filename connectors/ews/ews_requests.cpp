// File: connectors/ews/ews_requests.cpp — EWS operation elements (ews_requests.h).
#include "connectors/ews/ews_requests.h"

#include <algorithm>

#include <fmt/format.h>

#include "connectors/ews/ews_soap.h"

namespace mb::ews {
namespace {

std::string item_ids(const std::vector<std::string>& ids) {
  std::string out = "<m:ItemIds>";
  for (const auto& id : ids) out += "<t:ItemId Id=\"" + xml_escape(id) + "\"/>";
  return out + "</m:ItemIds>";
}

}  // namespace

std::string_view delete_type_name(DeleteType t) {
  return t == DeleteType::kHardDelete ? "HardDelete" : "MoveToDeletedItems";
}

std::string folder_id_xml(std::string_view id) {
  return "<t:FolderId Id=\"" + xml_escape(id) + "\"/>";
}

std::string mark_read_request(const std::vector<std::string>& ids) {
  std::string out =
      "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" MessageDisposition=\"SaveOnly\" "
      "SuppressReadReceipts=\"true\"><m:ItemChanges>";
  for (const auto& id : ids) {
    out += "<t:ItemChange><t:ItemId Id=\"" + xml_escape(id) +
           "\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"message:IsRead\"/>"
           "<t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates>"
           "</t:ItemChange>";
  }
  return out + "</m:ItemChanges></m:UpdateItem>";
}

std::string move_request(const std::vector<std::string>& ids, std::string_view to) {
  return "<m:MoveItem><m:ToFolderId>" + std::string(to) + "</m:ToFolderId>" + item_ids(ids) +
         "</m:MoveItem>";
}

std::string delete_request(const std::vector<std::string>& ids, DeleteType type) {
  return fmt::format("<m:DeleteItem DeleteType=\"{}\">", delete_type_name(type)) + item_ids(ids) +
         "</m:DeleteItem>";
}

std::string find_folder_request(std::string_view parent, size_t offset) {
  return fmt::format(
      "<m:FindFolder Traversal=\"Shallow\"><m:FolderShape><t:BaseShape>Default</t:BaseShape>"
      "</m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned=\"{}\" Offset=\"{}\" "
      "BasePoint=\"Beginning\"/><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindFolder>",
      kFindCountLimit, offset, parent);
}

std::string create_folder_request(std::string_view parent, std::string_view name) {
  return "<m:CreateFolder><m:ParentFolderId>" + std::string(parent) +
         "</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>" + xml_escape(name) +
         "</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>";
}

std::string find_items_request(std::string_view folder, size_t offset, size_t max, bool unread_only) {
  std::string out = fmt::format(
      "<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
      "</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned=\"{}\" Offset=\"{}\" "
      "BasePoint=\"Beginning\"/>",
      std::clamp<size_t>(max, 1, kFindCountLimit), offset);
  if (unread_only) {
    out += "<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI=\"message:IsRead\"/>"
           "<t:FieldURIOrConstant><t:Constant Value=\"false\"/></t:FieldURIOrConstant>"
           "</t:IsEqualTo></m:Restriction>";
  }
  return out + "<m:SortOrder><t:FieldOrder Order=\"Ascending\"><t:FieldURI "
               "FieldURI=\"item:DateTimeReceived\"/></t:FieldOrder></m:SortOrder>"
               "<m:ParentFolderIds>" + std::string(folder) + "</m:ParentFolderIds></m:FindItem>";
}

FoundPage found_page(pugi::xml_node response_message) {
  FoundPage page;
  pugi::xml_node root = child(response_message, "RootFolder");
  page.last = std::string_view(root.attribute("IncludesLastItemInRange").value()) != "false";
  for (pugi::xml_node list : root.children()) {
    if (list.type() != pugi::node_element) continue;
    for (pugi::xml_node e : list.children()) {
      if (e.type() != pugi::node_element) continue;
      FoundPage::Entry entry;
      pugi::xml_node id = child(e, "ItemId");
      if (!id) id = child(e, "FolderId");
      entry.id = id.attribute("Id").value();
      entry.name = child_text(e, "DisplayName");
      if (!entry.id.empty()) page.entries.push_back(std::move(entry));
    }
  }
  return page;
}

}  // namespace mb::ews
