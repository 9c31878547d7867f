// File: tests/integration/ingest_suite.cpp — the tests of the connector-independent ingest
// suite (see ingest_suite.h): SPEC §2 end to end through `mailbridge sync --once`.
#include "tests/integration/ingest_suite.h"

#include <fmt/format.h>

#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// All notes' attachments of a `tickets show --json` object.
std::vector<nlohmann::json> all_attachments(const nlohmann::json& ticket) {
  std::vector<nlohmann::json> out;
  if (!ticket.contains("notes")) return out;
  for (const auto& n : ticket["notes"]) {
    if (!n.contains("attachments") || !n["attachments"].is_array()) continue;
    for (const auto& a : n["attachments"]) out.push_back(a);
  }
  return out;
}

const nlohmann::json* find_attachment(const std::vector<nlohmann::json>& atts,
                                      const std::string& filename) {
  for (const auto& a : atts) {
    if (a.value("filename", "") == filename) return &a;
  }
  return nullptr;
}

std::vector<std::string> subjects_of(const std::vector<ServerMessage>& msgs) {
  std::vector<std::string> out;
  for (const auto& m : msgs) out.push_back(m.subject);
  return out;
}

int64_t id_of(const nlohmann::json& t) { return t.value("id", int64_t{0}); }

}  // namespace

// ---- fixture ----

bool MailServer::supports_after(const std::string& after) const {
  if (after == "mark-read") return has_seen_flag();
  if (after.rfind("move", 0) == 0) return has_folders();
  return true;
}

std::string IngestSuite::routine_after() const {
  return server_->supports_after("mark-read") ? "mark-read" : "leave";
}

void IngestSuite::SetUp() {
  auto env = load_harness();
  ASSERT_THAT(env, IsOk());
  server_ = GetParam().make();
  ASSERT_NE(server_, nullptr);
  user_ = unique_user();
  dir_ = std::make_unique<TempDir>();
  config_path_ = dir_->file("mailbridge.toml");
  db_path_ = dir_->file("mailbridge.db");
}

void IngestSuite::TearDown() {
  if (HasFailure() && dir_) {
    dir_->keep();
    std::fprintf(stderr, "kept %s for inspection (mail user %s)\n", dir_->path().c_str(),
                 user_.c_str());
  }
}

void IngestSuite::configure(const std::string& after, int max_per_poll) {
  const std::string chosen = after.empty() ? routine_after() : after;
  std::string toml = config_toml(db_path_,
                                 server_->mailbox_toml(mailbox_name_, user_, chosen, max_per_poll) +
                                     "\n" + extra_toml_);
  ASSERT_THAT(write_file(config_path_, toml), IsOk());
}

RunResult IngestSuite::mailbridge(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"--config", config_path_};
  full.insert(full.end(), args.begin(), args.end());
  RunOptions opts;
  opts.env = server_->secrets_env();
  opts.cwd = dir_->path();
  return run_mailbridge(full, opts);
}

void IngestSuite::sync_ok() {
  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
}

void IngestSuite::deliver(const MessageSpec& spec) { deliver_raw(make_message(spec)); }

void IngestSuite::deliver_raw(const std::string& raw) {
  ASSERT_THAT(server_->deliver(user_, raw), IsOk());
}

std::vector<ServerMessage> IngestSuite::folder(const std::string& name) {
  auto r = server_->list(user_, name);
  EXPECT_THAT(r, IsOk());
  return r.ok() ? *r : std::vector<ServerMessage>{};
}

nlohmann::json IngestSuite::tickets() {
  RunResult r = mailbridge({"tickets", "list", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto j = parse_json(r.out);
  EXPECT_TRUE(j.is_array()) << "tickets list --json printed: " << r.out;
  return j.is_array() ? j : nlohmann::json::array();
}

nlohmann::json IngestSuite::ticket(int64_t id) {
  RunResult r = mailbridge({"tickets", "show", std::to_string(id), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto j = parse_json(r.out);
  EXPECT_TRUE(j.is_object()) << "tickets show --json printed: " << r.out;
  return j.is_object() ? j : nlohmann::json::object();
}

nlohmann::json IngestSuite::mailbox_status() {
  RunResult r = mailbridge({"status", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto j = parse_json(r.out);
  if (j.is_array()) {
    for (const auto& m : j) {
      if (m.is_object() && m.value("name", "") == mailbox_name_) return m;
    }
  } else if (j.is_object()) {
    if (j.value("name", "") == mailbox_name_) return j;
    if (j.contains(mailbox_name_)) return j[mailbox_name_];
  }
  ADD_FAILURE() << "no mailbox \"" << mailbox_name_ << "\" in status --json: " << r.out;
  return nlohmann::json::object();
}

int64_t IngestSuite::skipped_total() {
  auto s = mailbox_status();
  int64_t n = 0;
  if (s.contains("skipped") && s["skipped"].is_object()) {
    for (const auto& [reason, count] : s["skipped"].items()) {
      if (count.is_number_integer()) n += count.get<int64_t>();
    }
  }
  return n;
}

// ---- SPEC §2: routing ----

TEST_P(IngestSuite, NewMessageBecomesTicket) {
  configure();
  deliver({.subject = "Printer on fire", .text = "The printer in room 4 is on fire.\n"});
  sync_ok();

  auto list = tickets();
  ASSERT_EQ(list.size(), 1u) << list.dump(2);
  EXPECT_EQ(list[0].value("subject", ""), "Printer on fire");
  EXPECT_EQ(list[0].value("requester", ""), "alice@example.com");
  EXPECT_EQ(list[0].value("notes", 0), 1);
  auto t = ticket(id_of(list[0]));
  ASSERT_EQ(t["notes"].size(), 1u) << t.dump(2);
  EXPECT_EQ(t["notes"][0].value("kind", ""), "email-in");
  EXPECT_THAT(t["notes"][0].value("text", ""), HasSubstr("room 4 is on fire"));
  EXPECT_EQ(mailbox_status().value("imported", -1), 1);
}

TEST_P(IngestSuite, FollowUpByHashIdBecomesNote) {
  configure();
  deliver({.subject = "VPN drops every hour", .text = "First report.\n"});
  sync_ok();
  auto list = tickets();
  ASSERT_EQ(list.size(), 1u);
  int64_t id = id_of(list[0]);

  deliver({.subject = fmt::format("Re: VPN drops every hour #{}", id),
           .text = "It happened again at noon.\n"});
  // "#id" naming no ticket is not a follow-up: it starts a ticket of its own.
  deliver({.subject = fmt::format("Question about invoice #{}", id + 9000),
           .text = "Unrelated.\n"});
  sync_ok();

  list = tickets();
  ASSERT_EQ(list.size(), 2u) << list.dump(2);
  auto t = ticket(id);
  ASSERT_EQ(t["notes"].size(), 2u) << t.dump(2);
  EXPECT_THAT(t["notes"][1].value("text", ""), HasSubstr("It happened again at noon."));
}

TEST_P(IngestSuite, FollowUpByModuleTagInSubjectBecomesNote) {
  configure();
  deliver({.subject = "Cannot print", .text = "Printer says no.\n"});
  sync_ok();
  auto list = tickets();
  ASSERT_EQ(list.size(), 1u);
  int64_t id = id_of(list[0]);

  deliver({.subject = fmt::format("RE: [Ticket - {}] Cannot print", id),
           .text = "Still broken.\n"});
  sync_ok();

  EXPECT_EQ(tickets().size(), 1u);
  auto t = ticket(id);
  ASSERT_EQ(t["notes"].size(), 2u) << t.dump(2);
  EXPECT_THAT(t["notes"][1].value("text", ""), HasSubstr("Still broken."));
}

TEST_P(IngestSuite, FollowUpByModuleTagInBodyBecomesNote) {
  configure();
  deliver({.subject = "New laptop", .text = "Please order one.\n"});
  sync_ok();
  auto list = tickets();
  ASSERT_EQ(list.size(), 1u);
  int64_t id = id_of(list[0]);

  deliver({.subject = "Some more details",
           .text = fmt::format("About [Ticket - {}]: a 14 inch one, please.\n", id)});
  sync_ok();

  EXPECT_EQ(tickets().size(), 1u);
  auto t = ticket(id);
  ASSERT_EQ(t["notes"].size(), 2u) << t.dump(2);
  EXPECT_THAT(t["notes"][1].value("text", ""), HasSubstr("a 14 inch one"));
}

// ---- SPEC §2: content ----

TEST_P(IngestSuite, HtmlAttachmentsAndInlineImagesKept) {
  configure();
  const std::string pdf = test_bytes(5000, 1);
  const std::string png = test_bytes(700, 2);
  deliver({.subject = "Quarterly report",
           .text = "See the attached report.\n",
           .html = "<p>See the <b>attached</b> report.</p><img src=\"cid:logo@example.com\">",
           .parts = {{"report.pdf", "application/pdf", pdf, ""},
                     {"logo.png", "image/png", png, "logo@example.com"}}});
  sync_ok();

  auto list = tickets();
  ASSERT_EQ(list.size(), 1u);
  auto t = ticket(id_of(list[0]));
  ASSERT_GE(t["notes"].size(), 1u) << t.dump(2);
  EXPECT_THAT(t["notes"][0].value("html", ""), HasSubstr("<b>attached</b>"));
  auto atts = all_attachments(t);
  const auto* a_pdf = find_attachment(atts, "report.pdf");
  const auto* a_png = find_attachment(atts, "logo.png");
  ASSERT_NE(a_pdf, nullptr) << t.dump(2);
  ASSERT_NE(a_png, nullptr) << t.dump(2);
  EXPECT_EQ(a_pdf->value("sha256", ""), sha256_hex(pdf));
  EXPECT_EQ(a_pdf->value("size", 0), 5000);
  EXPECT_EQ(a_pdf->value("content_type", ""), "application/pdf");
  EXPECT_EQ(a_png->value("sha256", ""), sha256_hex(png));
  EXPECT_EQ(a_png->value("content_type", ""), "image/png");
}

TEST_P(IngestSuite, RestrictedAttachmentDroppedAndNamed) {
  configure();
  const std::string exe = "MZ" + test_bytes(1000, 3);
  const std::string txt = "log line 1\r\nlog line 2\r\n";
  deliver({.subject = "Installer does not run",
           .text = "Attached the installer and the log.\n",
           .parts = {{"setup.exe", "application/octet-stream", exe, ""},
                     {"install.log", "text/plain", txt, ""}}});
  sync_ok();

  auto list = tickets();
  ASSERT_EQ(list.size(), 1u);
  auto t = ticket(id_of(list[0]));
  auto atts = all_attachments(t);
  EXPECT_EQ(find_attachment(atts, "setup.exe"), nullptr) << t.dump(2);
  const auto* log = find_attachment(atts, "install.log");
  ASSERT_NE(log, nullptr) << t.dump(2);
  EXPECT_EQ(log->value("sha256", ""), sha256_hex(txt));

  bool dropped_named = false, email_received_note = false;
  for (const auto& n : t["notes"]) {
    if (n.contains("dropped_attachments") &&
        n["dropped_attachments"].dump().find("setup.exe") != std::string::npos) {
      dropped_named = true;
    }
    std::string text = n.value("text", "");
    if (text.find("Email Received") != std::string::npos &&
        text.find("setup.exe") != std::string::npos) {
      email_received_note = true;
    }
  }
  EXPECT_TRUE(dropped_named) << "no note lists setup.exe in dropped_attachments: " << t.dump(2);
  EXPECT_TRUE(email_received_note)
      << "no note says \"Email Received\" naming setup.exe: " << t.dump(2);
}

// ---- SPEC §2: what is not processed ----

TEST_P(IngestSuite, SubjectOver400CharactersSkippedAndLeftUnseen) {
  configure();
  std::string s400 = "ok-400 " + std::string(393, 'x');
  std::string s401 = "long-401 " + std::string(392, 'y');
  ASSERT_EQ(s400.size(), 400u);
  ASSERT_EQ(s401.size(), 401u);
  deliver({.subject = s400, .text = "At the limit.\n"});
  deliver({.subject = s401, .text = "Over the limit.\n"});
  sync_ok();

  auto list = tickets();
  ASSERT_EQ(list.size(), 1u) << list.dump(2);
  EXPECT_EQ(list[0].value("subject", ""), s400);
  auto st = mailbox_status();
  ASSERT_TRUE(st.contains("skipped")) << st.dump(2);
  EXPECT_EQ(st["skipped"].value("subject-too-long", 0), 1) << st.dump(2);

  bool left_unseen = false;
  for (const auto& m : folder("INBOX")) {
    if (m.subject == s401) left_unseen = !server_->has_seen_flag() || !m.seen;
  }
  EXPECT_TRUE(left_unseen) << "the 401-character message is not in INBOX, unseen";
}

// Issue 13 item 12: a message over max_message_bytes is recorded once as too-large, left on
// the server, counted in status, and not downloaded again by the next pass.
TEST_P(IngestSuite, TooLargeMessageSkippedOnceLeftOnServerAndNotFetchedAgain) {
  extra_toml_ = "[ingest]\nmax_message_bytes = 4096\n";
  configure();
  std::string big_text;
  for (int i = 0; i < 200; ++i) big_text += "line " + std::to_string(i) + " of a big message\n";
  deliver({.subject = "Big attachment dump", .text = big_text});
  deliver({.subject = "Small and welcome", .text = "Fits.\n"});
  RunResult first = mailbridge({"--log-level", "trace", "sync", "--once"});
  ASSERT_EQ(first.exit_code, 0) << first.describe();

  auto list = tickets();
  ASSERT_EQ(list.size(), 1u) << list.dump(2);
  EXPECT_EQ(list[0].value("subject", ""), "Small and welcome");
  auto st = mailbox_status();
  ASSERT_TRUE(st.contains("skipped")) << st.dump(2);
  EXPECT_EQ(st["skipped"].value("too-large", 0), 1) << st.dump(2);
  bool left = false;
  for (const auto& m : folder("INBOX")) {
    if (m.subject == "Big attachment dump") left = !server_->has_seen_flag() || !m.seen;
  }
  EXPECT_TRUE(left) << "the big message is not in INBOX, unseen";
  const std::string marker = server_->fetch_trace();
  if (!marker.empty()) {
    EXPECT_THAT(first.err, HasSubstr(marker));  // the trace does show downloads
  }

  RunResult second = mailbridge({"--log-level", "trace", "sync", "--once"});
  ASSERT_EQ(second.exit_code, 0) << second.describe();
  if (!marker.empty()) {
    EXPECT_EQ(second.err.find(marker), std::string::npos)
        << "the second pass downloaded a message again:\n" << second.err;
  }
  EXPECT_EQ(tickets().size(), 1u);
  EXPECT_EQ(skipped_total(), 0) << "counted once, in the pass that met it";
}

TEST_P(IngestSuite, DefaultSubjectFilterAndAutoReplyCreateNoTicket) {
  configure();
  deliver({.subject = "Out of Office: back on Monday", .text = "I am away.\n"});
  deliver({.subject = "Thanks for your message",
           .text = "We received your message.\n",
           .extra_headers = {{"Auto-Submitted", "auto-replied"}}});
  deliver({.subject = "Laptop will not boot", .text = "Black screen.\n"});
  sync_ok();

  auto list = tickets();
  ASSERT_EQ(list.size(), 1u) << list.dump(2);
  EXPECT_EQ(list[0].value("subject", ""), "Laptop will not boot");
  EXPECT_EQ(skipped_total(), 2) << mailbox_status().dump(2);
}

TEST_P(IngestSuite, AcceptFromTechniciansSkipsOthersAsNotAccepted) {
  extra_toml_ =
      "[filters]\naccept_from = \"technicians\"\n\n"
      "[[user]]\nemail = \"Tom.Tech@example.com\"\nrole = \"technician\"\n\n"
      "[[user]]\nemail = \"rita@example.com\"\nrole = \"requestor\"\n";
  configure();
  deliver({.from = "Tom <tom.tech@EXAMPLE.com>", .subject = "Switch in room 4 is down",
           .text = "Reported by phone.\n"});
  deliver({.from = "Rita <rita@example.com>", .subject = "Printer jammed", .text = "Again.\n"});
  deliver({.subject = "Laptop will not boot", .text = "Black screen.\n"});  // alice: unknown
  sync_ok();

  auto list = tickets();
  ASSERT_EQ(list.size(), 1u) << list.dump(2);
  EXPECT_EQ(list[0].value("subject", ""), "Switch in room 4 is down");
  auto st = mailbox_status();
  ASSERT_TRUE(st.contains("skipped")) << st.dump(2);
  EXPECT_EQ(st["skipped"].value("not-accepted", 0), 2) << st.dump(2);
  EXPECT_EQ(skipped_total(), 2) << st.dump(2);
}

// ---- SPEC §2: after processing ----

TEST_P(IngestSuite, AfterMarkReadLeavesMessagesSeen) {
  if (!server_->supports_after("mark-read")) GTEST_SKIP() << "no mark-read on this connector";
  configure("mark-read");
  deliver({.subject = "mark-read one", .text = "1\n"});
  deliver({.subject = "mark-read two", .text = "2\n"});
  sync_ok();

  EXPECT_EQ(tickets().size(), 2u);
  auto inbox = folder("INBOX");
  ASSERT_EQ(inbox.size(), 2u);
  for (const auto& m : inbox) EXPECT_TRUE(m.seen) << m.file;
}

TEST_P(IngestSuite, AfterDeleteRemovesMessages) {
  if (!server_->supports_after("delete")) GTEST_SKIP() << "no delete on this connector";
  configure("delete");
  deliver({.subject = "delete one", .text = "1\n"});
  deliver({.subject = "delete two", .text = "2\n"});
  sync_ok();

  EXPECT_EQ(tickets().size(), 2u);
  EXPECT_THAT(subjects_of(folder("INBOX")), ::testing::IsEmpty());
}

TEST_P(IngestSuite, AfterMoveMovesMessagesToProcessed) {
  if (!server_->supports_after("move:Processed")) GTEST_SKIP() << "no move on this connector";
  configure("move:Processed");
  deliver({.subject = "move one", .text = "1\n"});
  deliver({.subject = "move two", .text = "2\n"});
  sync_ok();

  EXPECT_EQ(tickets().size(), 2u);
  EXPECT_THAT(subjects_of(folder("INBOX")), ::testing::IsEmpty());
  EXPECT_THAT(subjects_of(folder("Processed")), UnorderedElementsAre("move one", "move two"));
}

TEST_P(IngestSuite, AfterLeaveKeepsMessagesAndImportsThemOnce) {
  configure("leave");
  deliver({.subject = "leave one", .text = "1\n"});
  deliver({.subject = "leave two", .text = "2\n"});
  sync_ok();
  EXPECT_EQ(tickets().size(), 2u);
  auto inbox = folder("INBOX");
  EXPECT_THAT(subjects_of(inbox), UnorderedElementsAre("leave one", "leave two"));
  if (server_->has_seen_flag()) {
    for (const auto& m : inbox) EXPECT_FALSE(m.seen) << m.file;
  }

  sync_ok();
  EXPECT_EQ(tickets().size(), 2u) << "a second sync re-imported left messages";
  EXPECT_EQ(mailbox_status().value("imported", -1), 0);

  // New mail after the left copies is still picked up.
  deliver({.subject = "leave three", .text = "3\n"});
  sync_ok();
  EXPECT_EQ(tickets().size(), 3u);
  EXPECT_EQ(folder("INBOX").size(), 3u);
}

}  // namespace mb::itest
