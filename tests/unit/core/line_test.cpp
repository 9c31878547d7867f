// File: tests/unit/core/line_test.cpp — LineChannel over ScriptedStream: line endings,
// byte-at-a-time input, the line bound, literals across chunks, STARTTLS injection and
// trace redaction, and the receive buffer growing with the reads and released for a wait.
#include "core/line.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/status_matchers.h"
#include "tests/unit/core/script_server.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

struct Scripted {
  explicit Scripted(std::string server, size_t chunk = 4096, size_t max_line = 64 * 1024) {
    auto s = std::make_unique<ScriptedStream>(std::move(server));
    s->set_chunk(chunk);
    stream = s.get();
    channel = std::make_unique<LineChannel>(std::move(s), max_line);
  }
  ScriptedStream* stream;
  std::unique_ptr<LineChannel> channel;
};

std::vector<std::string> read_all_lines(LineChannel& ch) {
  std::vector<std::string> lines;
  for (auto l = ch.read_line(); l.ok(); l = ch.read_line()) lines.push_back(*l);
  return lines;
}

TEST(LineChannelTest, CrlfAndBareLfEndLines) {
  Scripted t("* OK hi\r\nbare\n\r\nlast\r\n");
  EXPECT_THAT(read_all_lines(*t.channel), ElementsAre("* OK hi", "bare", "", "last"));
}

TEST(LineChannelTest, EndOfScriptIsConnectionClosed) {
  Scripted t("one\r\npartial");
  ASSERT_THAT(t.channel->read_line(), IsOk());
  auto r = t.channel->read_line();
  EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork, HasSubstr("connection closed by server")));
  EXPECT_EQ(r.status().scope(), ErrorScope::kConnection);
}

TEST(LineChannelTest, ByteAtATimeGivesTheSameLinesAndLiteral) {
  std::string literal = "Subject: x\r\n\r\nbody\r\n";
  std::string script = "* 1 FETCH (BODY[] {" + std::to_string(literal.size()) + "}\r\n" +
                       literal + ")\r\na1 OK done\n";
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{7}, size_t{4096}}) {
    SCOPED_TRACE(chunk);
    Scripted t(script, chunk);
    EXPECT_EQ(t.channel->read_line().value(), "* 1 FETCH (BODY[] {20}");
    std::string body;
    ASSERT_THAT(t.channel->read_exact(literal.size(), body), IsOk());
    EXPECT_EQ(body, literal);
    EXPECT_THAT(read_all_lines(*t.channel), ElementsAre(")", "a1 OK done"));
  }
}

TEST(LineChannelTest, LineOfExactlyMaxLengthIsAccepted) {
  std::string line(10, 'x');
  Scripted t(line + "\r\n" + line + "\n", 1, 10);
  EXPECT_THAT(read_all_lines(*t.channel), ElementsAre(line, line));
}

TEST(LineChannelTest, LongerLineIsAProtocolError) {
  Scripted t(std::string(11, 'x') + "\r\n", 4096, 10);
  EXPECT_THAT(t.channel->read_line(), StatusIs(ErrorKind::kProtocol, HasSubstr("line too long")));
}

// The bound holds before the end of the line arrives: an endless line is refused, not
// buffered until the connection drops.
TEST(LineChannelTest, EndlessLineIsRefusedWithoutWaitingForItsEnd) {
  for (size_t chunk : {size_t{1}, size_t{4096}}) {
    Scripted t(std::string(100, 'x'), chunk, 10);
    auto r = t.channel->read_line();
    EXPECT_THAT(r, StatusIs(ErrorKind::kProtocol, HasSubstr("more than 10 bytes")));
    EXPECT_EQ(r.status().scope(), ErrorScope::kConnection);
  }
}

TEST(LineChannelTest, LongLinesAcrossManyReadsWithinTheDefaultBound) {
  std::string line(LineChannel::kDefaultMaxLine, 'a');
  Scripted t(line + "\r\nshort\r\n" + line + "\r\n", 1000);
  EXPECT_THAT(read_all_lines(*t.channel), ElementsAre(line, "short", line));
}

TEST(LineChannelTest, ReadExactAppendsAcrossChunkBoundaries) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>('a' + i % 26);
  Scripted t("hdr\r\n" + data + "tail\r\n", 4099);
  ASSERT_THAT(t.channel->read_line(), IsOk());
  std::string out = "keep:";
  ASSERT_THAT(t.channel->read_exact(data.size(), out), IsOk());
  EXPECT_EQ(out, "keep:" + data);
  EXPECT_EQ(t.channel->read_line().value(), "tail");
}

TEST(LineChannelTest, ShortLiteralFailsAndLeavesOutputUntouched) {
  Scripted t("abc", 1);
  std::string out = "keep";
  EXPECT_THAT(t.channel->read_exact(10, out),
              StatusIs(ErrorKind::kNetwork, HasSubstr("connection closed by server")));
  EXPECT_EQ(out, "keep");
}

TEST(LineChannelTest, StartTlsRefusesBytesBufferedPastTheReply) {
  Scripted t("a1 OK Begin TLS now\r\n* OK injected\r\n");
  EXPECT_EQ(t.channel->read_line().value(), "a1 OK Begin TLS now");
  // A TLS-security refusal (exit 4), for IMAP, POP3 and SMTP alike.
  Status s = t.channel->start_tls("imap.example", TlsOptions{});
  EXPECT_THAT(s, StatusIs(ErrorKind::kTls, HasSubstr("injection")));
  EXPECT_EQ(s.scope(), ErrorScope::kConnection);
  EXPECT_FALSE(t.stream->is_tls());
}

TEST(LineChannelTest, StartTlsUpgradesWhenNothingIsBuffered) {
  Scripted t("a1 OK Begin TLS now\r\n* OK over tls\r\n");
  t.stream->set_chunk(21);  // exactly the reply line
  EXPECT_EQ(t.channel->read_line().value(), "a1 OK Begin TLS now");
  EXPECT_FALSE(t.channel->buffered());
  ASSERT_THAT(t.channel->start_tls("imap.example", TlsOptions{}), IsOk());
  EXPECT_TRUE(t.stream->is_tls());
  EXPECT_EQ(t.channel->read_line().value(), "* OK over tls");
}

TEST(LineChannelTest, BufferStartsSmallGrowsWithFullReadsAndIsReleasedWhenEmpty) {
  std::string long_line(20000, 'x');
  Scripted s("* OK\r\n" + long_line + "\r\n* 3 EXISTS\r\nrest", 64 * 1024);
  auto greeting = s.channel->read_line();
  ASSERT_THAT(greeting, IsOk());
  EXPECT_EQ(s.channel->buffer_size(), 2048u);  // a short answer keeps the smallest buffer
  auto line = s.channel->read_line();
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(*line, long_line);
  EXPECT_GE(s.channel->buffer_size(), 20000u);
  EXPECT_LE(s.channel->buffer_size(), 64u * 1024);

  s.channel->release_buffer();  // unread bytes remain: kept, not dropped
  EXPECT_GE(s.channel->buffer_size(), 20000u);
  auto exists = s.channel->read_line();
  ASSERT_THAT(exists, IsOk());
  EXPECT_EQ(*exists, "* 3 EXISTS");
  std::string rest;
  ASSERT_THAT(s.channel->read_exact(4, rest), IsOk());
  EXPECT_EQ(rest, "rest");

  s.channel->release_buffer();  // nothing unread: freed, and the next read starts small
  EXPECT_EQ(s.channel->buffer_size(), 0u);
}

TEST(LineChannelTest, ReleasedBufferReadsTheNextLineFromTheSmallestChunk) {
  std::string long_line(10000, 'y');
  Scripted s(long_line + "\r\n* 4 EXISTS\r\n", 64 * 1024);
  ASSERT_THAT(s.channel->read_line(), IsOk());
  s.channel->release_buffer();
  // "* 4 EXISTS" was read together with the long line: still buffered, nothing released.
  EXPECT_GT(s.channel->buffer_size(), 0u);
  auto exists = s.channel->read_line();
  ASSERT_THAT(exists, IsOk());
  EXPECT_EQ(*exists, "* 4 EXISTS");
  s.channel->release_buffer();
  EXPECT_EQ(s.channel->buffer_size(), 0u);
  EXPECT_THAT(s.channel->read_line(), StatusIs(ErrorKind::kNetwork, HasSubstr("closed")));
  EXPECT_EQ(s.channel->buffer_size(), 2048u);
}

TEST(LineChannelTest, TraceRedactsTheSecretPart) {
  Scripted t("* OK hi\r\n");
  std::vector<std::string> trace;
  t.channel->set_trace([&](const std::string& l) { trace.push_back(l); });
  std::string login = "a1 LOGIN alice s3cr3t-pw";
  ASSERT_THAT(t.channel->write_line(login, login.find("s3cr3t"), 9), IsOk());
  ASSERT_THAT(t.channel->write_line("a2 AUTHENTICATE PLAIN AGFsaWNlAHMzY3IzdA==", 22), IsOk());
  ASSERT_THAT(t.channel->write_line("a3 NOOP"), IsOk());
  ASSERT_THAT(t.channel->write_raw("raw literal s3cr3t-pw\r\n"), IsOk());
  ASSERT_THAT(t.channel->read_line(), IsOk());
  EXPECT_THAT(trace, ElementsAre("C: a1 LOGIN alice <redacted>",
                                 "C: a2 AUTHENTICATE PLAIN <redacted>", "C: a3 NOOP",
                                 "C: <23 bytes>", "S: * OK hi"));
  for (const auto& l : trace) EXPECT_THAT(l, Not(HasSubstr("s3cr3t")));
  EXPECT_EQ(t.stream->written(),
            "a1 LOGIN alice s3cr3t-pw\r\na2 AUTHENTICATE PLAIN AGFsaWNlAHMzY3IzdA==\r\n"
            "a3 NOOP\r\nraw literal s3cr3t-pw\r\n");
}

TEST(LineChannelTest, ClosedScriptedStreamRefusesIo) {
  Scripted t("* OK hi\r\n");
  t.channel->close();
  EXPECT_THAT(t.channel->write_line("a1 NOOP"), StatusIs(ErrorKind::kNetwork, HasSubstr("closed")));
  EXPECT_THAT(t.channel->read_line(), StatusIs(ErrorKind::kNetwork, HasSubstr("closed")));
}


// A line is appended to the caller's string as it arrives: a CR split from its LF by a
// chunk boundary still ends the line, a lone CR inside stays, and bytes past `keep` are
// counted but not kept.
TEST(LineChannelTest, ReadLineIntoStreamsLongLinesAndKeepsOnlyWhatIsAsked) {
  std::string longline(200000, 'x');
  std::string script = longline + "\r\n.dot\r\na\rb\r\n\r\nend\n";
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{4096}}) {
    SCOPED_TRACE(chunk);
    Scripted t(script, chunk, /*max_line=*/16);
    std::string out;
    auto a = t.channel->read_line_into(out, UINT64_MAX, UINT64_MAX);
    ASSERT_THAT(a, IsOk());
    EXPECT_EQ(a->size, longline.size());
    EXPECT_EQ(out, longline);
    out.clear();
    auto b = t.channel->read_line_into(out, 2, UINT64_MAX);
    ASSERT_THAT(b, IsOk());
    EXPECT_EQ(b->size, 4u);
    EXPECT_EQ(b->first, '.');
    EXPECT_EQ(out, ".d");
    out.clear();
    ASSERT_THAT(t.channel->read_line_into(out, 100, 100), IsOk());
    EXPECT_EQ(out, "a\rb");
    out.clear();
    auto empty = t.channel->read_line_into(out, 100, 100);
    ASSERT_THAT(empty, IsOk());
    EXPECT_EQ(empty->size, 0u);
    EXPECT_EQ(t.channel->read_line().value(), "end");
  }
}

TEST(LineChannelTest, ReadLineIntoRefusesALinePastItsMax) {
  Scripted t(std::string(5000, 'y') + "\r\n");
  std::string out;
  EXPECT_THAT(t.channel->read_line_into(out, 10, 4096),
              StatusIs(ErrorKind::kProtocol, HasSubstr("line too long")));
  EXPECT_LE(out.size(), 10u);
}

TEST(LineChannelTest, SkipDropsBytesAcrossChunks) {
  Scripted t(std::string(10000, 'z') + "after\r\n", 7);
  ASSERT_THAT(t.channel->skip(10000), IsOk());
  EXPECT_EQ(t.channel->read_line().value(), "after");
}

// A step whose time is spent fails the next read with kNetwork naming the step, even when
// the server has bytes ready (a trickle never counts as progress enough).
TEST(LineChannelTest, SpentStepFailsTheNextReadNamingTheStep) {
  Scripted t("* OK hi\r\nmore\r\n");
  t.channel->begin_step("the answer to UID FETCH", std::chrono::milliseconds(0));
  auto r = t.channel->read_line();
  EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork,
                          HasSubstr("timed out waiting for the answer to UID FETCH after 0 ms")));
  EXPECT_EQ(r.status().scope(), ErrorScope::kConnection);
  t.channel->end_step();
  EXPECT_EQ(t.channel->read_line().value(), "* OK hi");
}

// Over a real socket: a server sending one byte every 100 ms would keep a per-read
// time-out of 1 s happy for ever; the step's deadline of 1 s ends it.
TEST(LineChannelTest, TricklingServerHitsTheStepDeadline) {
  mb::testing::ScriptServer server([](mb::testing::Peer& p) {
    p.trickle("* OK this greeting never ends ", std::chrono::milliseconds(100), true);
  });
  Timeouts timeouts;
  timeouts.connect = std::chrono::seconds(1);
  timeouts.response = std::chrono::seconds(1);
  auto stream = connect_tcp("127.0.0.1", server.port(), timeouts);
  ASSERT_THAT(stream, IsOk());
  LineChannel ch(std::move(*stream));
  ch.set_timeout(std::chrono::seconds(1));
  auto started = std::chrono::steady_clock::now();
  ch.begin_step("the greeting", std::chrono::seconds(1));
  auto r = ch.read_line();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork,
                          HasSubstr("timed out waiting for the greeting after 1 s")));
  EXPECT_LT(took, std::chrono::seconds(5));
}

// The floor on throughput: a body arriving faster than kMinRate extends the deadline, so a
// large transfer that outlasts the budget still succeeds.
TEST(LineChannelTest, FastBodyOutlivesTheBudget) {
  const std::string piece(LineChannel::kMinRate / 4, 'b');  // 16 KiB every 50 ms: 320 KiB/s
  mb::testing::ScriptServer server([&](mb::testing::Peer& p) {
    for (int i = 0; i < 40; ++i) {  // 2 s in all
      if (!p.send(piece) || !p.pause(std::chrono::milliseconds(50))) return;
    }
    p.send("\r\n");
    std::string ignored;
    p.read_line(ignored);  // wait for the client to hang up
  });
  Timeouts timeouts;
  auto stream = connect_tcp("127.0.0.1", server.port(), timeouts);
  ASSERT_THAT(stream, IsOk());
  LineChannel ch(std::move(*stream));
  ch.begin_step("the answer to RETR 1", std::chrono::seconds(1));
  std::string out;
  auto r = ch.read_line_into(out, UINT64_MAX, UINT64_MAX);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->size, piece.size() * 40);
}

}  // namespace
}  // namespace mb
