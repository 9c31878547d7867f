// File: tests/integration/ews_actions_test.cpp — the EWS mailbox's post-actions and folders
// (connectors/ews/ews_mailbox.h) against the EWS stand-in (tests/harness/ews.sh): mark-read
// (and the unread-only listing it implies), a move into a folder path that does not exist yet
// (created level by level), delete into Deleted Items and hard, a display-name path as the
// source folder, FindItem paged over several pages, and each action repeated after a
// simulated crash (the same old ItemIds again, from a new mailbox object: harmless) — also
// through the ingest (sync_mailbox), with a MoveItem whose answer was lost.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/ews/ews_mailbox.h"
#include "core/config.h"
#include "core/ingest.h"
#include "core/store.h"
#include "tests/integration/ews_harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

class EwsActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ews::env().empty()) GTEST_SKIP() << "the EWS stand-in is not running";
    ASSERT_THAT(ews::admin("POST", "/stats/reset"), IsOk());
    ASSERT_THAT(ews::admin("POST", "/faults/clear"), IsOk());
    address = unique_user() + "@" + ews::at("MB_EWS_DOMAIN");
    ASSERT_THAT(ews::admin("POST", "/accounts", {{"upn", address}}), IsOk());
  }

  mb::ews::MailboxOptions options(PostAction after = PostAction::leave()) const {
    mb::ews::MailboxOptions o;
    o.client.endpoint = ews::at("MB_EWS_URL");
    o.client.tls.ca_file = ews::at("MB_EWS_CA_FILE");
    o.client.timeouts.connect = std::chrono::seconds(10);
    o.client.timeouts.response = std::chrono::seconds(20);
    o.client.method = mb::ews::SignInMethod::kNtlm;
    o.client.user = ews::at("MB_EWS_SERVICE_ACCOUNT");
    o.client.access = mb::ews::Access::kImpersonation;
    o.client.mailbox = address;
    o.after = std::move(after);
    return o;
  }
  std::unique_ptr<Mailbox> mailbox(const mb::ews::MailboxOptions& o) const {
    return mb::ews::make_ews_mailbox(o, SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  }
  // Delivers `n` messages into the inbox; their ItemIds, oldest first.
  std::vector<std::string> deliver(int n) {
    nlohmann::json messages = nlohmann::json::array();
    for (int i = 0; i < n; ++i) {
      messages.push_back({{"mime", "From: a@example.com\r\nSubject: m" + std::to_string(delivered_ + i) +
                                       "\r\nMessage-ID: <" + std::to_string(delivered_ + i) + "." +
                                       unique_user() + "@test>\r\n\r\nbody\r\n"}});
    }
    delivered_ += n;
    auto r = ews::admin("POST", "/deliver", {{"mailbox", address}, {"messages", messages}});
    EXPECT_THAT(r, IsOk());
    std::vector<std::string> ids;
    if (r.ok()) {
      for (const auto& item : (*r)["items"]) ids.push_back(item["id"]);
    }
    return ids;
  }
  // The items of a folder, by distinguished name or (`path`) display-name path: id → isRead.
  std::map<std::string, bool> folder(const std::string& name, bool path = false) const {
    auto r = ews::admin("GET", "/folder?mailbox=" + address + (path ? "&path=" : "&folder=") + name);
    EXPECT_THAT(r, IsOk()) << name;
    std::map<std::string, bool> out;
    if (r.ok()) {
      for (const auto& i : (*r)["items"]) out[i["id"].get<std::string>()] = i["isRead"].get<bool>();
    }
    return out;
  }
  static int calls(const std::string& op) {
    auto s = ews::admin("GET", "/stats");
    EXPECT_THAT(s, IsOk());
    return s.ok() ? (*s)["by_operation"].value(op, 0) : -1;
  }

  std::string address;
  int delivered_ = 0;
};

TEST_F(EwsActionsTest, MarkReadSetsTheFlagAndOnlyUnreadMailIsPending) {
  std::vector<std::string> ids = deliver(3);
  auto mbx = mailbox(options(PostAction::mark_read()));
  auto p = mbx->list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->keys, ids);
  ASSERT_THAT(mbx->apply({ids[0], ids[1]}, PostAction::mark_read()), IsOk());
  EXPECT_EQ(calls("UpdateItem"), 1) << "one request for both";
  auto inbox = folder("inbox");
  EXPECT_TRUE(inbox[ids[0]]);
  EXPECT_TRUE(inbox[ids[1]]);
  EXPECT_FALSE(inbox[ids[2]]);
  // A SyncState Exchange forgot (or a first run) lists the unread one only.
  auto fresh = mailbox(options(PostAction::mark_read()))->list_pending(10, "");
  ASSERT_THAT(fresh, IsOk());
  EXPECT_THAT(fresh->keys, ElementsAre(ids[2]));
  // The stored state sees the read-flag changes and lists nothing new.
  auto next = mbx->list_pending(10, p->next_state);
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT(next->keys, IsEmpty());
  // Again after a crash: harmless.
  ASSERT_THAT(mailbox(options())->apply({ids[0]}, PostAction::mark_read()), IsOk());
  EXPECT_TRUE(folder("inbox")[ids[0]]);
}

TEST_F(EwsActionsTest, AMoveCreatesItsTargetPathAndARepeatAfterACrashIsHarmless) {
  std::vector<std::string> ids = deliver(3);
  auto mbx = mailbox(options(PostAction::move("Inbox/Processed/2026")));
  auto p = mbx->list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  ASSERT_EQ(p->keys, ids);
  ASSERT_THAT(mbx->apply({ids[0], ids[1]}, PostAction::move("Inbox/Processed/2026")), IsOk());
  EXPECT_EQ(calls("CreateFolder"), 2) << "Processed, then 2026 in it";
  auto target = folder("Inbox/Processed/2026", true);
  ASSERT_EQ(target.size(), 2u);
  for (const auto& [id, read] : target) {
    EXPECT_NE(id, ids[0]) << "a moved item has a new ItemId";
    EXPECT_NE(id, ids[1]);
  }
  EXPECT_EQ(folder("inbox").size(), 1u);
  // The source's SyncFolderItems reports the moves as Deletes: nothing is listed.
  auto next = mbx->list_pending(10, p->next_state);
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT(next->keys, IsEmpty());
  // Killed after the move, before it was recorded: the next run moves the same old ids
  // again, with the third, from a new object (the path is found, not created, this time).
  auto again = mailbox(options(PostAction::move("inbox/PROCESSED/2026")));
  ASSERT_THAT(again->apply(ids, PostAction::move("inbox/PROCESSED/2026")), IsOk());
  EXPECT_EQ(calls("CreateFolder"), 2);
  EXPECT_EQ(folder("Inbox/Processed/2026", true).size(), 3u) << "each message there once";
  EXPECT_TRUE(folder("inbox").empty());
}

TEST_F(EwsActionsTest, DeleteMovesToDeletedItemsByDefaultOrHardDeletes) {
  std::vector<std::string> ids = deliver(4);
  auto soft = mailbox(options(PostAction::remove()));
  ASSERT_THAT(soft->apply({ids[0], ids[1]}, PostAction::remove()), IsOk());
  EXPECT_EQ(folder("deleteditems").size(), 2u) << "restorable by a person";
  auto opts = options(PostAction::remove());
  opts.delete_type = mb::ews::DeleteType::kHardDelete;
  auto hard = mailbox(opts);
  ASSERT_THAT(hard->apply({ids[2], ids[3]}, PostAction::remove()), IsOk());
  EXPECT_EQ(folder("deleteditems").size(), 2u) << "hard-deleted mail skips Deleted Items";
  EXPECT_TRUE(folder("inbox").empty());
  // Repeated after a crash, both ways: the ids are gone, which is what was wanted.
  EXPECT_THAT(soft->apply(ids, PostAction::remove()), IsOk());
  EXPECT_THAT(hard->apply(ids, PostAction::remove()), IsOk());
  EXPECT_EQ(folder("deleteditems").size(), 2u);
}

TEST_F(EwsActionsTest, ADelegateDeletesIntoDeletedItemsByMoveItem) {
  std::vector<std::string> ids = deliver(1);
  ASSERT_THAT(ews::admin("POST", "/accounts", {{"upn", "del-" + address}, {"full_access", {address}}}), IsOk());
  auto o = options(PostAction::remove());
  o.client.method = mb::ews::SignInMethod::kBasic;
  o.client.user = "del-" + address;
  o.client.access = mb::ews::Access::kDelegate;
  ASSERT_THAT(mailbox(o)->apply(ids, PostAction::remove()), IsOk());
  EXPECT_EQ(calls("DeleteItem"), 0);
  EXPECT_EQ(folder("deleteditems").size(), 1u);
}

TEST_F(EwsActionsTest, ADisplayNamePathIsASourceFolderAndAMissingOneIsAConfigurationError) {
  std::vector<std::string> ids = deliver(2);
  ASSERT_THAT(mailbox(options())->apply(ids, PostAction::move("Inbox/Support")), IsOk());
  auto o = options();
  o.folder = "inbox/SUPPORT";
  auto support = mailbox(o);
  auto report = support->test_connection();
  EXPECT_THAT(report.status, IsOk());
  EXPECT_EQ(report.message_count, 2u);
  auto p = support->list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  std::vector<std::string> there;
  for (const auto& [id, read] : folder("Inbox/Support", true)) there.push_back(id);
  EXPECT_THAT(p->keys, UnorderedElementsAreArray(there));
  o.folder = "Inbox/Nowhere";
  EXPECT_THAT(mailbox(o)->list_pending(10, ""),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("Inbox/Nowhere"), HasSubstr("\"Nowhere\""))));
  EXPECT_EQ(calls("CreateFolder"), 1) << "a source folder is never created";
}

TEST_F(EwsActionsTest, FindItemPagesOverSeveralPagesAndResumesUnderLeave) {
  std::vector<std::string> ids = deliver(5);
  auto o = options();
  o.listing = mb::ews::Listing::kFind;
  o.find_page = 2;
  auto mbx = mailbox(o);
  auto all = mbx->list_pending(10, "");
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(all->keys, ids) << "oldest first";
  EXPECT_FALSE(all->more);
  EXPECT_EQ(calls("FindItem"), 3) << "pages of 2, 2 and 1";
  EXPECT_EQ(calls("SyncFolderItems"), 0);
  // Resumed with a limit: 3, then the rest, then nothing; then only what arrived later.
  auto first = mbx->list_pending(3, "");
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(first->keys, ElementsAreArray(ids.begin(), ids.begin() + 3));
  EXPECT_TRUE(first->more);
  auto rest = mbx->list_pending(3, first->next_state);
  ASSERT_THAT(rest, IsOk());
  EXPECT_THAT(rest->keys, ElementsAre(ids[3], ids[4]));
  EXPECT_FALSE(rest->more);
  std::vector<std::string> later = deliver(1);
  auto news = mbx->list_pending(3, rest->next_state);
  ASSERT_THAT(news, IsOk());
  EXPECT_EQ(news->keys, later);
}

TEST_F(EwsActionsTest, FindItemUnderAMoveListsWhatIsStillInTheFolder) {
  std::vector<std::string> ids = deliver(3);
  auto o = options(PostAction::move("Processed"));
  o.listing = mb::ews::Listing::kFind;
  auto mbx = mailbox(o);
  auto p = mbx->list_pending(2, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre(ids[0], ids[1]));
  EXPECT_TRUE(p->more);
  ASSERT_THAT(mbx->apply(p->keys, PostAction::move("Processed")), IsOk());
  auto next = mbx->list_pending(2, p->next_state);
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT(next->keys, ElementsAre(ids[2]));
  EXPECT_FALSE(next->more);
  EXPECT_EQ(folder("Processed", true).size(), 2u);
}

// The EWS mailbox, except that the first apply's answer is lost after the server acted (the
// process died there, or the connection dropped): the ledger keeps the post-action undone.
class LosesFirstApplyAnswer final : public Mailbox {
 public:
  explicit LosesFirstApplyAnswer(std::unique_ptr<Mailbox> inner) : inner_(std::move(inner)) {}
  ConnectionReport test_connection() override { return inner_->test_connection(); }
  Result<Pending> list_pending(size_t limit, const std::string& state) override {
    return inner_->list_pending(limit, state);
  }
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override {
    return inner_->fetch(keys, cb);
  }
  Status apply(const std::vector<std::string>& keys, const PostAction& action) override {
    MB_RETURN_IF_ERROR(inner_->apply(keys, action));
    if (lost_) return Status::Ok();
    lost_ = true;
    return Status(ErrorKind::kNetwork, "the answer to the post-action was lost", ErrorScope::kConnection);
  }
  Capabilities capabilities() const override { return inner_->capabilities(); }
  void close() override { inner_->close(); }

 private:
  std::unique_ptr<Mailbox> inner_;
  bool lost_ = false;
};

TEST_F(EwsActionsTest, TheIngestRedoesAMoveWhoseAnswerWasLostWithoutASecondTicket) {
  std::vector<std::string> ids = deliver(4);
  TempDir dir;
  auto store = Store::open(dir.file("mb.db"));
  ASSERT_THAT(store, IsOk());
  Config config;
  MailboxConfig m;
  m.name = "ews-support";
  m.project = "IT";
  m.after = PostAction::move("Inbox/Done");
  m.max_per_poll = 50;
  {
    LosesFirstApplyAnswer mbx(mailbox(options(m.after)));
    auto first = sync_mailbox(mbx, m, config, **store);
    EXPECT_THAT(first.status(), StatusIs(ErrorKind::kNetwork, HasSubstr("lost")));
  }
  EXPECT_EQ(folder("Inbox/Done", true).size(), 4u) << "the server moved them";
  auto undone = (*store)->pending_post_actions(m.name);
  ASSERT_THAT(undone, IsOk());
  EXPECT_EQ(undone->size(), 4u) << "the ledger does not know";
  // The next run (a restart: a new mailbox object) moves the old ids again: harmless.
  auto again = mailbox(options(m.after));
  auto second = sync_mailbox(*again, m, config, **store);
  ASSERT_THAT(second.status(), IsOk());
  EXPECT_EQ(second->imported, 0);
  undone = (*store)->pending_post_actions(m.name);
  ASSERT_THAT(undone, IsOk());
  EXPECT_THAT(*undone, IsEmpty());
  auto tickets = (*store)->list_tickets();
  ASSERT_THAT(tickets, IsOk());
  EXPECT_EQ(tickets->size(), 4u) << "one ticket each, none twice";
  EXPECT_EQ(folder("Inbox/Done", true).size(), 4u);
  EXPECT_TRUE(folder("inbox").empty());
}

}  // namespace
}  // namespace mb::itest
