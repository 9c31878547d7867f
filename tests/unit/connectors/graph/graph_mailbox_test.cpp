// File: tests/unit/connectors/graph/graph_mailbox_test.cpp — the Graph Mailbox against a
// scripted Graph: folders, delta paging with @removed, resets, max_per_poll, ordered and
// bounded $value downloads, post-actions, test-connection.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "graph_fake.h"
#include "tests/status_matchers.h"

namespace mb::testing {
namespace {

using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kUser = "/users/support%40contoso.com";

json folder(const std::string& id, const std::string& name, int total = 0) {
  return {{"id", id}, {"displayName", name}, {"totalItemCount", total}, {"unreadItemCount", 1}};
}

json msg(const std::string& id, bool read, const std::string& when) {
  return {{"id", id}, {"isRead", read}, {"receivedDateTime", when}};
}

class GraphMailboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.name = "support";
    cfg_.type = ConnectorType::kGraph;
    cfg_.auth = AuthMethod::kOAuth2;
    cfg_.user = "support@contoso.com";
    cfg_.folder = "INBOX";
    graph_ = std::make_shared<FakeGraph>();
    tokens_ = std::make_shared<FakeTokens>();
    sleeps_ = std::make_shared<Sleeps>();
  }
  std::unique_ptr<Mailbox> mailbox() {
    return make_graph_mailbox(cfg_, kService, fake_sign_in(tokens_), factory(graph_),
                              fake_tuning(sleeps_));
  }
  // Inbox resolves to "inbox-id"; everything else answers `rest`.
  void route(std::function<HttpResponse(const HttpRequest&)> rest) {
    graph_->handler = [rest](const HttpRequest& r) {
      if (r.url.find(kUser + "/mailFolders/inbox?") != std::string::npos) {
        return json_response(200, folder("inbox-id", "Inbox", 42));
      }
      return rest(r);
    };
  }

  MailboxConfig cfg_;
  std::shared_ptr<FakeGraph> graph_;
  std::shared_ptr<FakeTokens> tokens_;
  std::shared_ptr<Sleeps> sleeps_;
};

// Graph: the delta query polled on poll_interval (30 s by default); change notifications
// are not built, so there is nothing to wait on and no request is made.
TEST_F(GraphMailboxTest, PollsTheDeltaQueryInsteadOfWaitingForChange) {
  auto m = mailbox();
  EXPECT_TRUE(m->capabilities().delta);
  EXPECT_FALSE(m->capabilities().push);
  auto r = m->wait_for_change(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(*r, ChangeWait::kUnsupported);
  EXPECT_TRUE(graph_->snapshot().empty());
}

TEST_F(GraphMailboxTest, ResolvesDisplayNamePathCaseInsensitivelyUnderWellKnownFolder) {
  cfg_.folder = "inbox/SUPPORT";
  route([](const HttpRequest& r) {
    if (r.url.find("/mailFolders/inbox-id/childFolders") != std::string::npos) {
      return json_response(200, {{"value", {folder("sales-id", "Sales"),
                                            folder("support-id", "Support")}}});
    }
    if (r.url.find("/mailFolders/support-id/messages/delta") != std::string::npos) {
      return json_response(200, {{"value", json::array()},
                                 {"@odata.deltaLink", kApi + "/delta?$deltatoken=1"}});
    }
    return graph_error(404, "ErrorItemNotFound", "unexpected " + r.url);
  });
  auto p = mailbox()->list_pending(50, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->next_state, "support-id " + kApi + "/delta?$deltatoken=1");
  auto reqs = graph_->snapshot();
  ASSERT_EQ(reqs.size(), 3u);
  const HttpRequest& delta = reqs.back();
  EXPECT_THAT(delta.url, HasSubstr("$select=id,isRead,receivedDateTime"));
  EXPECT_EQ(header_of(delta, "Authorization"), "Bearer " + kToken1);
  EXPECT_THAT(header_of(delta, "Prefer"), HasSubstr("IdType=\"ImmutableId\""));
  EXPECT_THAT(header_of(delta, "Prefer"), HasSubstr("odata.maxpagesize=50"));
  for (const auto& r : reqs) {
    EXPECT_THAT(header_of(r, "Prefer"), HasSubstr("IdType=\"ImmutableId\"")) << r.url;
    EXPECT_EQ(header_of(r, "client-request-id").size(), 36u) << r.url;
  }
}

TEST_F(GraphMailboxTest, MissingFolderIsNotFoundNamingThePath) {
  cfg_.folder = "Inbox/Nowhere";
  route([](const HttpRequest&) { return json_response(200, {{"value", json::array()}}); });
  EXPECT_THAT(mailbox()->list_pending(50, ""),
              StatusIs(ErrorKind::kNotFound, HasSubstr("Inbox/Nowhere")));
}

TEST_F(GraphMailboxTest, DeltaPagesFollowNextLinkSkipReadAndRemovedAndSortOldestFirst) {
  route([](const HttpRequest& r) {
    if (r.url.find("skiptoken=2") != std::string::npos) {
      return json_response(200, {{"value", {msg("m3", false, "2026-11-23T10:00:00Z"),
                                            {{"id", "m1"}, {"@removed", {{"reason", "deleted"}}}}}},
                                 {"@odata.deltaLink", kApi + "/d?$deltatoken=9"}});
    }
    return json_response(200, {{"value", {msg("m1", false, "2026-11-23T09:00:00Z"),
                                          msg("m2", true, "2026-11-23T08:00:00Z"),
                                          msg("m4", false, "2026-11-23T07:00:00Z")}},
                               {"@odata.nextLink", kApi + "/d?$skiptoken=2"}});
  });
  auto p = mailbox()->list_pending(50, "");
  ASSERT_THAT(p, IsOk());
  // m2 is read (mark-read lists unread mail), m1 was removed later in the round.
  EXPECT_THAT(p->keys, ElementsAre("m4", "m3"));
  EXPECT_FALSE(p->more);
  EXPECT_EQ(p->next_state, "inbox-id " + kApi + "/d?$deltatoken=9");
  // The next poll starts from the stored deltaLink, not from a full round.
  graph_->requests.clear();
  auto again = mailbox()->list_pending(50, p->next_state);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(graph_->count("GET", "deltatoken=9"), 1u);
  EXPECT_EQ(graph_->count("GET", "/messages/delta"), 0u);
}

TEST_F(GraphMailboxTest, DeleteActionListsReadMessagesToo) {
  cfg_.after = PostAction::remove();
  route([](const HttpRequest&) {
    return json_response(200, {{"value", {msg("a", true, "1"), msg("b", false, "2")}},
                               {"@odata.deltaLink", kApi + "/d?$deltatoken=1"}});
  });
  auto p = mailbox()->list_pending(50, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("a", "b"));
}

TEST_F(GraphMailboxTest, MaxPerPollStopsAtANextLinkAndResumesThere) {
  route([](const HttpRequest& r) {
    if (r.url.find("skiptoken=2") != std::string::npos) {
      return json_response(200, {{"value", {msg("c", false, "3")}},
                                 {"@odata.deltaLink", kApi + "/d?$deltatoken=5"}});
    }
    return json_response(200, {{"value", {msg("a", false, "1"), msg("b", false, "2")}},
                               {"@odata.nextLink", kApi + "/d?$skiptoken=2"}});
  });
  auto first = mailbox()->list_pending(2, "");
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(first->keys, ElementsAre("a", "b"));
  EXPECT_TRUE(first->more);
  EXPECT_EQ(first->next_state, "inbox-id " + kApi + "/d?$skiptoken=2");
  EXPECT_EQ(graph_->count("GET", "skiptoken=2"), 0u);
  auto second = mailbox()->list_pending(2, first->next_state);
  ASSERT_THAT(second, IsOk());
  EXPECT_THAT(second->keys, ElementsAre("c"));
  EXPECT_FALSE(second->more);
}

TEST_F(GraphMailboxTest, ResetDeltaRestartsWithAFullRound) {
  for (const auto& [status, code] : std::vector<std::pair<int, std::string>>{
           {410, "Gone"}, {400, "syncStateNotFound"}, {400, "resyncRequired"}}) {
    graph_->requests.clear();
    route([status = status, code = code](const HttpRequest& r) {
      if (r.url.find("deltatoken=old") != std::string::npos) {
        return graph_error(status, code, "The sync state is no longer valid.");
      }
      return json_response(200, {{"value", {msg("a", false, "1")}},
                                 {"@odata.deltaLink", kApi + "/d?$deltatoken=new"}});
    });
    auto p = mailbox()->list_pending(50, "inbox-id " + kApi + "/d?$deltatoken=old");
    ASSERT_THAT(p, IsOk()) << code;
    EXPECT_THAT(p->keys, ElementsAre("a"));
    EXPECT_EQ(p->next_state, "inbox-id " + kApi + "/d?$deltatoken=new");
    EXPECT_EQ(graph_->count("GET", "/mailFolders/inbox-id/messages/delta"), 1u) << code;
  }
}

TEST_F(GraphMailboxTest, StateOfAnotherFolderOrHostIsNotFollowed) {
  route([](const HttpRequest&) {
    return json_response(200, {{"value", json::array()},
                               {"@odata.deltaLink", kApi + "/d?$deltatoken=1"}});
  });
  ASSERT_THAT(mailbox()->list_pending(50, "other-id " + kApi + "/d?$deltatoken=x"), IsOk());
  ASSERT_THAT(mailbox()->list_pending(50, "inbox-id https://evil.test/v1.0/d"), IsOk());
  EXPECT_EQ(graph_->count("GET", "evil.test"), 0u);
  EXPECT_EQ(graph_->count("GET", "deltatoken=x"), 0u);
  EXPECT_EQ(graph_->count("GET", "/mailFolders/inbox-id/messages/delta"), 2u);
}

TEST_F(GraphMailboxTest, FetchRunsAtMostFourDownloadsAndDeliversInOrder) {
  graph_->hold_until = 4;
  route([](const HttpRequest& r) {
    auto pos = r.url.find("/messages/");
    std::string id = r.url.substr(pos + 10, r.url.find("/$value") - pos - 10);
    HttpResponse resp;
    resp.status = 200;
    resp.body = "Subject: message " + id + "\r\n\r\nbody of " + id + "\r\n";
    return resp;
  });
  std::vector<std::string> keys = {"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};
  std::vector<std::string> seen;
  auto mbx = mailbox();
  ASSERT_THAT(mbx->fetch(keys, [&](const std::string& key, Result<std::string> raw) {
    EXPECT_THAT(raw, IsOk());
    if (raw.ok()) {
      EXPECT_EQ(*raw, "Subject: message " + key + "\r\n\r\nbody of " + key + "\r\n");
    }
    seen.push_back(key);
    return Status::Ok();
  }),
              IsOk());
  EXPECT_EQ(seen, keys);
  EXPECT_EQ(graph_->max_in_flight, 4);
  for (const auto& r : graph_->snapshot()) {
    EXPECT_THAT(header_of(r, "Prefer"), HasSubstr("IdType=\"ImmutableId\""));
  }
}

TEST_F(GraphMailboxTest, ConfiguredConcurrencyIsNeverExceeded) {
  cfg_.max_concurrency = 2;
  graph_->hold_until = 2;
  route([](const HttpRequest&) {
    HttpResponse r;
    r.status = 200;
    r.body = "Subject: x\r\n\r\nx\r\n";
    return r;
  });
  std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f"};
  ASSERT_THAT(mailbox()->fetch(keys, [](const std::string&, Result<std::string>) {
    return Status::Ok();
  }),
              IsOk());
  EXPECT_EQ(graph_->max_in_flight, 2);
}

// A $value body growing past max_message_bytes is not kept: the download stops and that
// message alone is kTooLarge; the others arrive.
TEST_F(GraphMailboxTest, ADownloadOverTheSizeLimitStopsAndIsTooLarge) {
  cfg_.max_message_bytes = 100;
  route([](const HttpRequest& r) {
    HttpResponse resp;
    resp.status = 200;
    bool big = r.url.find("/big/") != std::string::npos;
    resp.body = "Subject: x\r\n\r\n" + std::string(big ? 5000 : 10, 'x') + "\r\n";
    return resp;
  });
  std::map<std::string, Status> got;
  ASSERT_THAT(mailbox()->fetch({"a", "big", "c"}, [&](const std::string& key, Result<std::string> raw) {
    got[key] = raw.status();
    return Status::Ok();
  }),
              IsOk());
  EXPECT_THAT(got["a"], IsOk());
  EXPECT_THAT(got["big"], StatusIs(ErrorKind::kTooLarge, HasSubstr("max_message_bytes (100)")));
  EXPECT_EQ(got["big"].scope(), ErrorScope::kMessage);
  EXPECT_THAT(got["c"], IsOk());
}

// The delta listing asks for PidTagMessageSize; a message Graph says is over
// max_message_bytes is kTooLarge without a $value request. Graph writes the id its own way
// ("Long 0xe08") and the value as a string; a message listed without it is downloaded (and
// cut at the limit), and a size under the limit is downloaded as usual.
TEST_F(GraphMailboxTest, AMessageListedOverTheSizeLimitIsTooLargeWithoutDownload) {
  cfg_.max_message_bytes = 1000;
  auto sized = [](const std::string& id, const std::string& prop_id, const std::string& size) {
    json m = msg(id, false, "2026-11-23T0" + std::to_string(id.size()) + ":00:00Z");
    m["singleValueExtendedProperties"] = {{{"id", prop_id}, {"value", size}}};
    return m;
  };
  route([&](const HttpRequest& r) {
    if (r.url.find("/messages/delta") != std::string::npos) {
      return json_response(
          200, {{"value", {sized("big", "Long 0xe08", "5000"), sized("small", "Long 0x0E08", "800"),
                           msg("unsized", false, "2026-11-23T09:00:00Z"),
                           sized("other", "Long 0x0E07", "999999")}},
                {"@odata.deltaLink", kApi + "/delta?$deltatoken=1"}});
    }
    HttpResponse resp;
    resp.status = 200;
    resp.body = "Subject: x\r\n\r\nx\r\n";
    return resp;
  });
  auto mbx = mailbox();
  auto p = mbx->list_pending(50, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(graph_->snapshot().back().url,
              HasSubstr("$expand=singleValueExtendedProperties($filter=id%20eq%20'Long%200x0E08')"));
  std::map<std::string, Status> got;
  ASSERT_THAT(mbx->fetch(p->keys, [&](const std::string& key, Result<std::string> raw) {
    got[key] = raw.status();
    return Status::Ok();
  }),
              IsOk());
  EXPECT_THAT(got["big"], StatusIs(ErrorKind::kTooLarge,
                                   AllOf(HasSubstr("5000 bytes"), HasSubstr("max_message_bytes (1000)"),
                                         HasSubstr("not downloaded"))));
  EXPECT_EQ(got["big"].scope(), ErrorScope::kMessage);
  EXPECT_THAT(got["small"], IsOk());
  EXPECT_THAT(got["unsized"], IsOk());
  EXPECT_THAT(got["other"], IsOk());  // another property is not the size
  for (const auto& r : graph_->snapshot()) {
    EXPECT_EQ(r.url.find("/big/$value"), std::string::npos) << r.url;
  }
}

TEST_F(GraphMailboxTest, AGoneMessageIsAMessageErrorAndTheOthersArrive) {
  route([](const HttpRequest& r) {
    if (r.url.find("/gone/") != std::string::npos) {
      return graph_error(404, "ErrorItemNotFound", "The specified object was not found.");
    }
    HttpResponse resp;
    resp.status = 200;
    resp.body = "Subject: x\r\n\r\nx\r\n";
    return resp;
  });
  std::vector<std::pair<std::string, bool>> got;
  ASSERT_THAT(mailbox()->fetch({"a", "gone", "b"},
                               [&](const std::string& key, Result<std::string> raw) {
                                 if (!raw.ok()) {
                                   EXPECT_EQ(raw.status().scope(), ErrorScope::kMessage);
                                   EXPECT_THAT(raw.status().message(),
                                               HasSubstr("ErrorItemNotFound"));
                                 }
                                 got.emplace_back(key, raw.ok());
                                 return Status::Ok();
                               }),
              IsOk());
  EXPECT_THAT(got, ElementsAre(std::pair<std::string, bool>{"a", true},
                               std::pair<std::string, bool>{"gone", false},
                               std::pair<std::string, bool>{"b", true}));
}

// An item Exchange cannot convert to MIME is unreadable (kInvalidInput, scope kMessage:
// skipped for good), even when answered 500, and the messages behind it still arrive.
TEST_F(GraphMailboxTest, AnItemThatCannotBeReadIsUnreadableAndTheOthersArrive) {
  route([](const HttpRequest& r) {
    if (r.url.find("/corrupt/") != std::string::npos) {
      return graph_error(500, "ErrorMimeContentConversionFailed",
                         "The MIME content conversion failed.");
    }
    if (r.url.find("/broken/") != std::string::npos) {
      return graph_error(400, "ErrorCorruptData", "Data is corrupt.");
    }
    HttpResponse resp;
    resp.status = 200;
    resp.body = "Subject: x\r\n\r\nx\r\n";
    return resp;
  });
  std::vector<std::pair<std::string, bool>> got;
  ASSERT_THAT(mailbox()->fetch({"a", "corrupt", "broken", "b"},
                               [&](const std::string& key, Result<std::string> raw) {
                                 if (!raw.ok()) {
                                   EXPECT_THAT(raw.status(), StatusIs(ErrorKind::kInvalidInput,
                                                                      HasSubstr("Error")));
                                   EXPECT_EQ(raw.status().scope(), ErrorScope::kMessage);
                                 }
                                 got.emplace_back(key, raw.ok());
                                 return Status::Ok();
                               }),
              IsOk());
  EXPECT_THAT(got, ElementsAre(std::pair<std::string, bool>{"a", true},
                               std::pair<std::string, bool>{"corrupt", false},
                               std::pair<std::string, bool>{"broken", false},
                               std::pair<std::string, bool>{"b", true}));
}

TEST_F(GraphMailboxTest, ThrottlingThatOutlastsTheBudgetStopsTheFetchWithRetryAfter) {
  route([](const HttpRequest&) {
    return graph_error(429, "TooManyRequests", "Too many requests", {{"Retry-After", "90"}});
  });
  int calls = 0;
  Status s = mailbox()->fetch({"a", "b"}, [&](const std::string&, Result<std::string>) {
    ++calls;
    return Status::Ok();
  });
  EXPECT_THAT(s, StatusIs(ErrorKind::kThrottled, HasSubstr("retry after 90 s")));
  ASSERT_TRUE(s.retry_after().has_value());
  EXPECT_EQ(*s.retry_after(), std::chrono::seconds(90));
  EXPECT_EQ(calls, 0);
}

TEST_F(GraphMailboxTest, MarkReadPatchesAndAGoneMessageIsDone) {
  route([](const HttpRequest& r) {
    if (r.url.find("/messages/gone") != std::string::npos) {
      return graph_error(404, "ErrorItemNotFound", "The specified object was not found.");
    }
    return json_response(200, {{"id", "x"}, {"isRead", true}});
  });
  ASSERT_THAT(mailbox()->apply({"a", "gone"}, PostAction::mark_read()), IsOk());
  auto reqs = graph_->snapshot();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.method, "PATCH");
    EXPECT_EQ(json::parse(r.body), json({{"isRead", true}}));
    EXPECT_EQ(header_of(r, "Content-Type"), "application/json");
  }
}

TEST_F(GraphMailboxTest, DeleteSendsDelete) {
  route([](const HttpRequest&) { return HttpResponse{204, {}, ""}; });
  ASSERT_THAT(mailbox()->apply({"id/with+odd="}, PostAction::remove()), IsOk());
  auto reqs = graph_->snapshot();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "DELETE");
  EXPECT_EQ(reqs[0].url, kApi + kUser + "/messages/id%2Fwith%2Bodd%3D");
}

TEST_F(GraphMailboxTest, MoveCreatesTheMissingFolderOnceAndMoves) {
  route([](const HttpRequest& r) {
    if (r.url.find("/mailFolders/msgfolderroot?") != std::string::npos) {
      return json_response(200, folder("root-id", "Top of Information Store"));
    }
    if (r.method == "GET" && r.url.find("/mailFolders/root-id/childFolders") != std::string::npos) {
      return json_response(200, {{"value", {folder("inbox-id", "Inbox")}}});
    }
    if (r.method == "POST" &&
        r.url.find("/mailFolders/root-id/childFolders") != std::string::npos) {
      return json_response(201, folder("done-id", json::parse(r.body)["displayName"]));
    }
    if (r.url.find("/move") != std::string::npos) return json_response(201, {{"id", "a"}});
    return graph_error(400, "ErrorInvalidRequest", r.url);
  });
  auto mbx = mailbox();
  ASSERT_THAT(mbx->apply({"a", "b"}, PostAction::move("Processed")), IsOk());
  ASSERT_THAT(mbx->apply({"c"}, PostAction::move("Processed")), IsOk());
  EXPECT_EQ(graph_->count("POST", "/childFolders"), 1u);
  EXPECT_EQ(graph_->count("POST", "/move"), 3u);
  for (const auto& r : graph_->snapshot()) {
    if (r.url.find("/move") != std::string::npos) {
      EXPECT_EQ(json::parse(r.body), json({{"destinationId", "done-id"}}));
    }
    if (r.method == "POST" && r.url.find("/childFolders") != std::string::npos) {
      EXPECT_EQ(json::parse(r.body), json({{"displayName", "Processed"}}));
    }
  }
}

TEST_F(GraphMailboxTest, TestConnectionReportsTokenMailboxFolderAndCount) {
  route([](const HttpRequest&) { return graph_error(500, "x", "unexpected"); });
  auto rep = mailbox()->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 4u);
  EXPECT_EQ(rep.steps[0].name, "token");
  EXPECT_EQ(rep.steps[0].detail, "app test (app-only)");
  EXPECT_EQ(rep.steps[1].name, "mailbox");
  EXPECT_EQ(rep.steps[2].name, "open-folder");
  EXPECT_THAT(rep.steps[2].detail, HasSubstr("inbox-id"));
  EXPECT_EQ(rep.steps[3].name, "count");
  ASSERT_TRUE(rep.message_count.has_value());
  EXPECT_EQ(*rep.message_count, 42u);
}

TEST_F(GraphMailboxTest, TestConnectionStopsAtAnAccessDeniedMailbox) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(403, "ErrorAccessDenied",
                       "Access is denied. Check credentials and try again.");
  };
  auto rep = mailbox()->test_connection();
  EXPECT_THAT(rep.status, StatusIs(ErrorKind::kAuth, HasSubstr("Mail.ReadWrite")));
  ASSERT_EQ(rep.steps.size(), 2u);
  EXPECT_TRUE(rep.steps[0].ok);
  EXPECT_FALSE(rep.steps[1].ok);
  EXPECT_FALSE(rep.message_count.has_value());
}

}  // namespace
}  // namespace mb::testing
