// File: tests/unit/connectors/imap/imap_transcript_test.cpp — replays the server
// transcripts of tests/data/imap/<vendor>/*.txt through the IMAP Mailbox.
//
// A transcript holds what the server says ("S: " lines, sent with CRLF), what the client
// must say ("C: " lines), the mailbox configuration ("config after=... security=...") and
// the calls to make with what each must give:
//   call list LIMIT STATE|-      expect keys=K1,K2 more=0|1 state=S   (or error=KIND)
//   call fetch K1 K2 ...         expect fetched=K1:SIZE,K2:not_found  (SIZE in bytes)
//   call apply ACTION K1 ...     expect ok                            (or error=KIND)
//   call test                    expect steps=resolve,connect,...     (or error=KIND)
// Lines starting with '#' are comments. The whole client transcript is compared at the end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "connectors/imap/imap_mailbox.h"
#include "core/config.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/imap/imap_test_util.h"

namespace mb {
namespace {
namespace fs = std::filesystem;

struct Transcript {
  std::string server, client;
  std::vector<std::pair<std::string, std::string>> calls;  // call line, expect line
  MailboxConfig cfg;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

std::string field(const std::string& expect, const std::string& name) {
  for (const auto& w : split(expect, ' ')) {
    if (w.rfind(name + "=", 0) == 0) return w.substr(name.size() + 1);
  }
  return "";
}

Transcript load(const fs::path& path) {
  Transcript t;
  t.cfg.name = "replay";
  t.cfg.type = ConnectorType::kImap;
  t.cfg.host = "127.0.0.1";
  t.cfg.port = 143;
  t.cfg.security = Security::kNone;
  t.cfg.user = "support@example.com";
  std::ifstream in(path, std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("S: ", 0) == 0 || line == "S:") {
      t.server += line.substr(std::min<size_t>(3, line.size())) + "\r\n";
    } else if (line.rfind("C: ", 0) == 0) {
      t.client += line.substr(3) + "\r\n";
    } else if (line.rfind("call ", 0) == 0) {
      t.calls.emplace_back(line.substr(5), "");
    } else if (line.rfind("expect ", 0) == 0 && !t.calls.empty()) {
      t.calls.back().second = line.substr(7);
    } else if (line.rfind("config ", 0) == 0) {
      std::string after = field(line, "after"), security = field(line, "security");
      if (!after.empty()) t.cfg.after = *parse_post_action(after);
      if (security == "starttls") t.cfg.security = Security::kStartTls;
    }
  }
  return t;
}

std::string kind_of(const Status& s) { return s.ok() ? "ok" : to_string(s.kind()); }

// Runs one call and describes its outcome in the expect line's own terms.
std::string run_call(Mailbox& m, const std::string& call) {
  std::vector<std::string> w = split(call, ' ');
  if (w[0] == "list") {
    auto p = m.list_pending(std::stoul(w[1]), w[2] == "-" ? "" : w[2]);
    if (!p.ok()) return "error=" + kind_of(p.status());
    std::string keys;
    for (const auto& k : p->keys) keys += (keys.empty() ? "" : ",") + k;
    return "keys=" + keys + " more=" + (p->more ? "1" : "0") + " state=" + p->next_state;
  }
  if (w[0] == "fetch") {
    std::string got;
    Status s = m.fetch({w.begin() + 1, w.end()}, [&](const std::string& k, Result<std::string> r) {
      got += (got.empty() ? "" : ",") + k + ":" +
             (r.ok() ? std::to_string(r->size()) : kind_of(r.status()));
      return Status::Ok();
    });
    return s.ok() ? "fetched=" + got : "error=" + kind_of(s);
  }
  if (w[0] == "apply") {
    Status s = m.apply({w.begin() + 2, w.end()}, *parse_post_action(w[1]));
    return s.ok() ? "ok" : "error=" + kind_of(s);
  }
  ConnectionReport r = m.test_connection();
  if (!r.status.ok()) return "error=" + kind_of(r.status);
  std::string steps;
  for (const auto& st : r.steps) steps += (steps.empty() ? "" : ",") + st.name;
  return "steps=" + steps;
}

class TranscriptTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(TranscriptTest, Replays) {
  Transcript t = load(GetParam());
  ASSERT_FALSE(t.calls.empty()) << "no call in " << GetParam();
  auto stream = std::make_shared<ScriptedStream>(t.server);
  stream->set_chunk(t.cfg.security == Security::kStartTls ? 1 : 512);
  bool opened = false;
  auto mailbox = make_imap_mailbox(t.cfg, SignIn::with_password("transcript-pw"), [&]() -> Result<std::unique_ptr<Stream>> {
    if (opened) return Status(ErrorKind::kNetwork, "only one connection is scripted");
    opened = true;
    return std::unique_ptr<Stream>(std::make_unique<imap::testing::SharedStream>(stream));
  });
  for (const auto& [call, expect] : t.calls) {
    SCOPED_TRACE("call " + call);
    EXPECT_EQ(run_call(*mailbox, call), expect);
  }
  EXPECT_EQ(stream->written(), t.client);
}

std::vector<fs::path> transcripts() {
  std::vector<fs::path> out;
  fs::path root = fs::path(MB_SOURCE_DIR) / "tests/data/imap";
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().extension() == ".txt") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

INSTANTIATE_TEST_SUITE_P(Vendors, TranscriptTest, ::testing::ValuesIn(transcripts()),
                         [](const auto& info) {
                           std::string n = info.param.parent_path().filename().string() + "_" +
                                           info.param.stem().string();
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace mb
