// File: tests/unit/connectors/ews/ews_mailbox_test.cpp — the EWS mailbox's writing side and
// folders (ews_mailbox.h, ews_folders.h, ews_requests.h) over a scripted HttpClient: the
// request XML of UpdateItem, MoveItem, DeleteItem, FindFolder, CreateFolder and FindItem;
// batches of at most 100 ids; each item of a batched answer judged on its own (gone already
// is success, one failure does not hide the others); display-name paths found level by level
// and created, cached, found again when Exchange forgets them; the source folder's
// configuration error; FindItem as the fallback, paged and resumed.
#include "connectors/ews/ews_mailbox.h"

#include <deque>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/ews/ews_folders.h"
#include "connectors/ews/ews_requests.h"
#include "tests/status_matchers.h"

namespace mb::ews {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// An answer of `op` with these response messages (already XML).
std::string answer(const std::string& op, const std::vector<std::string>& messages) {
  std::string body;
  for (const auto& m : messages) body += m;
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
         "<s:Body><m:" + op + "Response xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" "
         "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><m:ResponseMessages>" + body +
         "</m:ResponseMessages></m:" + op + "Response></s:Body></s:Envelope>";
}
std::string ok(const std::string& op, const std::string& inner = "") {
  return "<m:" + op + "ResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>" +
         inner + "</m:" + op + "ResponseMessage>";
}
std::string err(const std::string& op, const std::string& code) {
  return "<m:" + op + "ResponseMessage ResponseClass=\"Error\"><m:MessageText>text of " + code +
         "</m:MessageText><m:ResponseCode>" + code + "</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:" +
         op + "ResponseMessage>";
}
std::vector<std::string> oks(const std::string& op, size_t n) { return std::vector<std::string>(n, ok(op)); }
std::string folders(const std::vector<std::pair<std::string, std::string>>& list, bool last = true) {
  std::string inner;
  for (const auto& [id, name] : list) {
    inner += "<t:Folder><t:FolderId Id=\"" + id + "\"/><t:DisplayName>" + name + "</t:DisplayName></t:Folder>";
  }
  return ok("FindFolder", std::string("<m:RootFolder TotalItemsInView=\"9\" IncludesLastItemInRange=\"") +
                              (last ? "true" : "false") + "\"><t:Folders>" + inner + "</t:Folders></m:RootFolder>");
}
std::string items(const std::vector<std::string>& ids, bool last) {
  std::string inner;
  for (const auto& id : ids) inner += "<t:Message><t:ItemId Id=\"" + id + "\"/></t:Message>";
  return ok("FindItem", std::string("<m:RootFolder TotalItemsInView=\"9\" IncludesLastItemInRange=\"") +
                            (last ? "true" : "false") + "\"><t:Items>" + inner + "</t:Items></m:RootFolder>");
}
std::string created(const std::string& id) {
  return ok("CreateFolder", "<m:Folders><t:Folder><t:FolderId Id=\"" + id + "\"/></t:Folder></m:Folders>");
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class Scripted final : public HttpClient {
 public:
  Scripted(std::deque<std::string>* replies, std::vector<std::string>* seen) : replies_(replies), seen_(seen) {}
  Result<HttpResponse> send(const HttpRequest& request) override {
    seen_->push_back(request.body);
    if (replies_->empty()) return Status(ErrorKind::kNetwork, "no more scripted replies");
    HttpResponse r;
    r.status = 200;
    r.body = replies_->front();
    replies_->pop_front();
    return r;
  }

 private:
  std::deque<std::string>* replies_;
  std::vector<std::string>* seen_;
};

class EwsMailboxTest : public ::testing::Test {
 protected:
  std::unique_ptr<Mailbox> mailbox(MailboxOptions o = {}) {
    o.client.endpoint = "https://mail.corp.example/EWS/Exchange.asmx";
    o.client.mailbox = "helpdesk@corp.example";
    o.client.user = "helpdesk@corp.example";
    if (o.client.access == Access::kDelegate) o.client.user = "delegate@corp.example";
    o.client.sleep = [](std::chrono::milliseconds) { return Status::Ok(); };
    return make_ews_mailbox(o, SignIn::with_password("pw"), [this](const HttpOptions&, std::optional<NtlmCredentials>) {
      return std::make_unique<Scripted>(&replies, &seen);
    });
  }
  void reply(const std::string& op, const std::vector<std::string>& messages) {
    replies.push_back(answer(op, messages));
  }
  static std::vector<std::string> keys(size_t n) {
    std::vector<std::string> k;
    for (size_t i = 0; i < n; ++i) k.push_back("AAMkAD" + std::to_string(i));
    return k;
  }

  std::deque<std::string> replies;
  std::vector<std::string> seen;
};

TEST(EwsRequestsTest, MarkReadIsAnUpdateItemThatAlwaysOverwritesAndOnlySaves) {
  std::string x = mark_read_request({"A<1>", "B"});
  EXPECT_THAT(x, HasSubstr("<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" MessageDisposition=\"SaveOnly\" "
                           "SuppressReadReceipts=\"true\">"));
  EXPECT_THAT(x, HasSubstr("<t:ItemChange><t:ItemId Id=\"A&lt;1&gt;\"/><t:Updates><t:SetItemField>"
                           "<t:FieldURI FieldURI=\"message:IsRead\"/><t:Message><t:IsRead>true</t:IsRead>"
                           "</t:Message></t:SetItemField></t:Updates></t:ItemChange>"));
  EXPECT_EQ(count(x, "<t:ItemChange>"), 2u);
  pugi::xml_document doc;
  EXPECT_TRUE(doc.load_string(envelope({}, x).c_str())) << "well-formed";
}

TEST(EwsRequestsTest, MoveDeleteFindAndCreate) {
  EXPECT_EQ(move_request({"A", "B"}, folder_id_xml("F\"1")),
            "<m:MoveItem><m:ToFolderId><t:FolderId Id=\"F&quot;1\"/></m:ToFolderId><m:ItemIds>"
            "<t:ItemId Id=\"A\"/><t:ItemId Id=\"B\"/></m:ItemIds></m:MoveItem>");
  EXPECT_EQ(delete_request({"A"}, DeleteType::kHardDelete),
            "<m:DeleteItem DeleteType=\"HardDelete\"><m:ItemIds><t:ItemId Id=\"A\"/></m:ItemIds></m:DeleteItem>");
  EXPECT_THAT(delete_request({"A"}, DeleteType::kMoveToDeletedItems), HasSubstr("DeleteType=\"MoveToDeletedItems\""));
  EXPECT_THAT(find_folder_request("<t:DistinguishedFolderId Id=\"inbox\"/>", 1000),
              AllOf(HasSubstr("<m:FindFolder Traversal=\"Shallow\">"), HasSubstr("<t:BaseShape>Default</t:BaseShape>"),
                    HasSubstr("<m:IndexedPageFolderView MaxEntriesReturned=\"1000\" Offset=\"1000\" BasePoint=\"Beginning\"/>"),
                    HasSubstr("<m:ParentFolderIds><t:DistinguishedFolderId Id=\"inbox\"/></m:ParentFolderIds>")));
  EXPECT_THAT(create_folder_request("<t:FolderId Id=\"P\"/>", "R&D"),
              HasSubstr("<m:Folders><t:Folder><t:DisplayName>R&amp;D</t:DisplayName></t:Folder></m:Folders>"));
  std::string find = find_items_request("<t:FolderId Id=\"P\"/>", 20, 5000, true);
  EXPECT_THAT(find, AllOf(HasSubstr("<m:IndexedPageItemView MaxEntriesReturned=\"1000\" Offset=\"20\""),
                          HasSubstr("<t:FieldURI FieldURI=\"message:IsRead\"/><t:FieldURIOrConstant><t:Constant Value=\"false\"/>"),
                          HasSubstr("<t:FieldOrder Order=\"Ascending\"><t:FieldURI FieldURI=\"item:DateTimeReceived\"/>")));
  EXPECT_LT(find.find("</m:Restriction>"), find.find("<m:SortOrder>")) << "schema order";
  EXPECT_THAT(find_items_request("<t:FolderId Id=\"P\"/>", 0, 10, false), Not(HasSubstr("Restriction")));
}

TEST(EwsRequestsTest, FolderPaths) {
  EXPECT_THAT(split_folder_path("/Inbox//Processed/"), ElementsAre("Inbox", "Processed"));
  EXPECT_TRUE(is_distinguished("DeletedItems"));
  EXPECT_FALSE(is_distinguished("Processed"));
}

TEST_F(EwsMailboxTest, MarkReadSendsOneUpdateItemPerHundredIds) {
  auto mbx = mailbox();
  reply("UpdateItem", oks("UpdateItem", 100));
  reply("UpdateItem", oks("UpdateItem", 100));
  reply("UpdateItem", oks("UpdateItem", 50));
  ASSERT_THAT(mbx->apply(keys(250), PostAction::mark_read()), IsOk());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(count(seen[0], "<t:ItemChange>"), 100u);
  EXPECT_EQ(count(seen[2], "<t:ItemChange>"), 50u);
  EXPECT_THAT(seen[2], HasSubstr("Id=\"AAMkAD249\""));
  EXPECT_THAT(mbx->apply({}, PostAction::mark_read()), IsOk());
  EXPECT_THAT(mbx->apply(keys(3), PostAction::leave()), IsOk());
  EXPECT_EQ(seen.size(), 3u) << "nothing to send";
}

TEST_F(EwsMailboxTest, EachItemOfABatchIsJudgedOnItsOwn) {
  auto mbx = mailbox();
  // Gone already is success; a refused item is reported; the next batch is still sent.
  std::vector<std::string> first = oks("DeleteItem", 100);
  first[1] = err("DeleteItem", "ErrorItemNotFound");
  first[2] = err("DeleteItem", "ErrorInvalidIdMalformed");
  reply("DeleteItem", first);
  reply("DeleteItem", oks("DeleteItem", 1));
  Status s = mbx->apply(keys(101), PostAction::remove());
  EXPECT_THAT(s, StatusIs(ErrorKind::kRejected,
                          AllOf(HasSubstr("1 of 101 items failed"), HasSubstr("AAMkAD2"), HasSubstr("ErrorInvalidIdMalformed"))));
  EXPECT_EQ(s.scope(), ErrorScope::kMessage) << "the pass goes on";
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_THAT(seen[0], HasSubstr("<m:DeleteItem DeleteType=\"MoveToDeletedItems\">"));
}

TEST_F(EwsMailboxTest, ThrottlingAndAShortAnswerEndTheCall) {
  MailboxOptions o;
  o.client.max_attempts = 1;  // the client would send the whole call again (ews_client.h)
  auto mbx = mailbox(o);
  reply("UpdateItem", {ok("UpdateItem"), err("UpdateItem", "ErrorServerBusy")});
  EXPECT_THAT(mbx->apply(keys(2), PostAction::mark_read()), StatusIs(ErrorKind::kThrottled, HasSubstr("ErrorServerBusy")));
  reply("UpdateItem", {ok("UpdateItem")});
  EXPECT_THAT(mbx->apply(keys(2), PostAction::mark_read()), StatusIs(ErrorKind::kProtocol, HasSubstr("1 answers to 2 items")));
}

TEST_F(EwsMailboxTest, HardDeleteAndADelegatesDeleteThatMovesToDeletedItems) {
  MailboxOptions o;
  o.delete_type = DeleteType::kHardDelete;
  auto hard = mailbox(o);
  reply("DeleteItem", oks("DeleteItem", 2));
  ASSERT_THAT(hard->apply(keys(2), PostAction::remove()), IsOk());
  EXPECT_THAT(seen.back(), HasSubstr("DeleteType=\"HardDelete\""));
  MailboxOptions d;
  d.client.access = Access::kDelegate;
  auto delegate = mailbox(d);
  reply("MoveItem", oks("MoveItem", 2));
  ASSERT_THAT(delegate->apply(keys(2), PostAction::remove()), IsOk());
  EXPECT_THAT(seen.back(), HasSubstr("<m:MoveItem><m:ToFolderId><t:DistinguishedFolderId Id=\"deleteditems\">"
                                     "<t:Mailbox><t:EmailAddress>helpdesk@corp.example</t:EmailAddress>"));
}

TEST_F(EwsMailboxTest, AMoveFindsItsTargetByPathCreatesWhatIsMissingAndCachesIt) {
  auto mbx = mailbox();
  reply("FindFolder", {folders({{"F-other", "Other"}, {"F-sup", "SUPPORT"}})});  // under inbox
  reply("FindFolder", {folders({})});                                           // under Support
  reply("CreateFolder", {created("F-done")});
  reply("MoveItem", {ok("MoveItem", "<m:Items><t:Message><t:ItemId Id=\"NEW\"/></t:Message></m:Items>")});
  ASSERT_THAT(mbx->apply({"A"}, PostAction::move("Inbox/Support/Done")), IsOk());
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_THAT(seen[0], HasSubstr("<m:ParentFolderIds><t:DistinguishedFolderId Id=\"inbox\"/>"));
  EXPECT_THAT(seen[1], HasSubstr("<m:ParentFolderIds><t:FolderId Id=\"F-sup\"/>")) << "any case, like Exchange";
  EXPECT_THAT(seen[2], AllOf(HasSubstr("<m:CreateFolder><m:ParentFolderId><t:FolderId Id=\"F-sup\"/>"),
                             HasSubstr("<t:DisplayName>Done</t:DisplayName>")));
  EXPECT_THAT(seen[3], HasSubstr("<m:ToFolderId><t:FolderId Id=\"F-done\"/></m:ToFolderId>"));
  reply("MoveItem", oks("MoveItem", 1));
  ASSERT_THAT(mbx->apply({"B"}, PostAction::move("inbox/support/done")), IsOk());
  EXPECT_EQ(seen.size(), 5u) << "resolved once per mailbox object";
}

TEST_F(EwsMailboxTest, ATargetExchangeForgotIsFoundAgainOnceAndAFolderMadeMeanwhileIsUsed) {
  auto mbx = mailbox();
  reply("FindFolder", {folders({}, true)});  // under msgfolderroot: no "Processed"
  reply("CreateFolder", {err("CreateFolder", "ErrorFolderExists")});
  reply("FindFolder", {folders({{"F-p", "Processed"}})});
  reply("MoveItem", oks("MoveItem", 1));
  ASSERT_THAT(mbx->apply({"A"}, PostAction::move("Processed")), IsOk());
  EXPECT_THAT(seen[0], HasSubstr("<t:DistinguishedFolderId Id=\"msgfolderroot\"/>"));
  EXPECT_THAT(seen[3], HasSubstr("<t:FolderId Id=\"F-p\"/>"));
  // Removed since: MoveItem answers ErrorFolderNotFound; found (made) again and sent again.
  reply("MoveItem", {err("MoveItem", "ErrorFolderNotFound")});
  reply("FindFolder", {folders({})});
  reply("CreateFolder", {created("F-p2")});
  reply("MoveItem", oks("MoveItem", 1));
  ASSERT_THAT(mbx->apply({"B"}, PostAction::move("Processed")), IsOk());
  EXPECT_THAT(seen.back(), HasSubstr("<t:FolderId Id=\"F-p2\"/>"));
}

TEST_F(EwsMailboxTest, AMoveIntoTheFolderBeingReadIsRefused) {
  auto mbx = mailbox();
  EXPECT_THAT(mbx->apply({"A"}, PostAction::move("INBOX")),
              StatusIs(ErrorKind::kConfig, HasSubstr("is the folder being read")));
  EXPECT_TRUE(seen.empty()) << "nothing sent";
}

TEST_F(EwsMailboxTest, ASourceFolderThatDoesNotExistIsAConfigurationError) {
  MailboxOptions o;
  o.folder = "Inbox/Nowhere";
  auto mbx = mailbox(o);
  reply("FindFolder", {folders({{"F-1", "Somewhere"}})});
  EXPECT_THAT(mbx->list_pending(10, ""), StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("Inbox/Nowhere"), HasSubstr("\"Nowhere\""))));
  EXPECT_EQ(seen.size(), 1u) << "nothing is created for the source";
  MailboxOptions gone;
  auto inbox = mailbox(gone);
  reply("SyncFolderItems", {err("SyncFolderItems", "ErrorFolderNotFound")});
  EXPECT_THAT(inbox->list_pending(10, ""), StatusIs(ErrorKind::kConfig, HasSubstr("folder \"inbox\" not found")));
}

TEST_F(EwsMailboxTest, MarkReadListsUnreadItemsOnly) {
  MailboxOptions o;
  o.after = PostAction::mark_read();
  auto mbx = mailbox(o);
  reply("SyncFolderItems",
        {ok("SyncFolderItems", "<m:SyncState>S1</m:SyncState><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
                               "<m:Changes><t:Create><t:Message><t:ItemId Id=\"R\"/><t:IsRead>true</t:IsRead></t:Message></t:Create>"
                               "<t:Create><t:Message><t:ItemId Id=\"U\"/><t:IsRead>false</t:IsRead></t:Message></t:Create>"
                               "</m:Changes>")});
  auto p = mbx->list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("U"));
  EXPECT_THAT(seen[0], HasSubstr("<t:AdditionalProperties><t:FieldURI FieldURI=\"message:IsRead\"/>"));
}

TEST_F(EwsMailboxTest, ARefusedSyncFolderItemsFallsBackToFindItemPagedFromTheTop) {
  MailboxOptions o;
  o.find_page = 2;
  o.after = PostAction::move("Processed");
  auto mbx = mailbox(o);
  reply("SyncFolderItems", {err("SyncFolderItems", "ErrorInvalidOperation")});
  reply("FindItem", {items({"A", "B"}, false)});
  reply("FindItem", {items({"C"}, true)});
  auto p = mbx->list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("A", "B", "C"));
  EXPECT_FALSE(p->more);
  EXPECT_EQ(p->next_state, "find:");
  EXPECT_THAT(seen[1], HasSubstr("MaxEntriesReturned=\"2\" Offset=\"0\""));
  EXPECT_THAT(seen[2], HasSubstr("MaxEntriesReturned=\"2\" Offset=\"2\""));
  // From now on FindItem only; processed mail has left the folder, so it starts at the top.
  reply("FindItem", {items({"D"}, false)});
  p = mbx->list_pending(1, p->next_state);
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("D"));
  EXPECT_TRUE(p->more);
  EXPECT_THAT(seen[3], AllOf(HasSubstr("<m:FindItem"), HasSubstr("Offset=\"0\"")));
}

TEST_F(EwsMailboxTest, FindItemUnderLeaveResumesPastWhatItListedAndStartsOverWhenTheFolderChanged) {
  MailboxOptions o;
  o.listing = Listing::kFind;
  auto mbx = mailbox(o);
  reply("FindItem", {items({"A", "B"}, false)});
  auto p = mbx->list_pending(2, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->next_state, "find:2:B");
  EXPECT_TRUE(p->more);
  reply("FindItem", {items({"B", "C"}, true)});  // from the anchor B
  p = mbx->list_pending(2, p->next_state);
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("C"));
  EXPECT_EQ(p->next_state, "find:3:C");
  EXPECT_THAT(seen[1], HasSubstr("MaxEntriesReturned=\"3\" Offset=\"1\""));
  reply("FindItem", {items({"D"}, true)});  // C is no longer at position 3
  reply("FindItem", {items({"A", "D"}, true)});
  p = mbx->list_pending(5, p->next_state);
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("A", "D"));
  EXPECT_EQ(p->next_state, "find:2:D");
}

}  // namespace
}  // namespace mb::ews
