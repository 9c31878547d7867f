// File: tests/unit/core/metrics_test.cpp — the metrics registry (core/metrics.h): the text
// exposition format, escaping, thread safety, what ingest counts and what render(Store*)
// reads from the store.
#include "core/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/ingest.h"
#include "core/store.h"
#include "core/utc.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/fake_mailbox.h"

namespace mb {
namespace {

using ::mb::testing::FakeMailbox;
using ::mb::testing::FakeServer;
using ::mb::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

// The value of the series `line_start` ("name{labels}") in `text`; -1 when absent.
double sample(const std::string& text, const std::string& line_start) {
  size_t at = text.find("\n" + line_start + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + line_start.size() + 2));
}

TEST(MetricsTest, EscapesLabelValues) {
  EXPECT_EQ(metrics::escape_label_value("plain"), "plain");
  EXPECT_EQ(metrics::escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

TEST(MetricsTest, FormatsValues) {
  EXPECT_EQ(metrics::format_value(0), "0");
  EXPECT_EQ(metrics::format_value(42), "42");
  EXPECT_EQ(metrics::format_value(1.5), "1.5");
  EXPECT_EQ(metrics::format_value(-3), "-3");
  EXPECT_EQ(metrics::format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(metrics::format_value(std::nan("")), "NaN");
}

TEST(MetricsTest, RendersHelpTypeAndEscapedLabels) {
  metrics::messages_skipped("we\"ird\\box\nx", "sender-filter").inc(2);
  metrics::Family extra{"mailbridge_test_gauge", "A test\\ gauge\nwith two lines.",
                        metrics::Type::kGauge, {{{{"state", "queued"}}, 3}, {{}, 1.25}}};
  std::string text = metrics::render_families({extra});
  EXPECT_THAT(text, HasSubstr("# HELP mailbridge_messages_skipped_total Messages recorded"));
  EXPECT_THAT(text, HasSubstr("# TYPE mailbridge_messages_skipped_total counter\n"));
  EXPECT_THAT(text, HasSubstr("\nmailbridge_messages_skipped_total{mailbox=\"we\\\"ird\\\\box"
                              "\\nx\",reason=\"sender-filter\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("# HELP mailbridge_test_gauge A test\\\\ gauge\\nwith two lines.\n"
                              "# TYPE mailbridge_test_gauge gauge\n"
                              "mailbridge_test_gauge{state=\"queued\"} 3\n"
                              "mailbridge_test_gauge 1.25\n"));
  // Every family is declared before its first sample; the idle gauge exists from the start.
  EXPECT_THAT(text, HasSubstr("# TYPE mailbridge_errors_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mailbridge_imap_idle_connections gauge\n"));
  EXPECT_GE(sample(text, "mailbridge_imap_idle_connections"), 0);
  // Each line ends with a newline, the text included.
  EXPECT_EQ(text.back(), '\n');
  // Families sorted by name.
  EXPECT_LT(text.find("# HELP mailbridge_errors_total"),
            text.find("# HELP mailbridge_messages_imported_total"));
}

TEST(MetricsTest, CountersAreThreadSafeAndOnlyGoUp) {
  metrics::Counter& c = metrics::outbox_retries("threads-test");
  double before = c.value();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 10000; ++i) metrics::outbox_retries("threads-test").inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value() - before, 80000);
  c.inc(-5);  // ignored: a counter never goes down
  EXPECT_EQ(c.value() - before, 80000);
  EXPECT_EQ(&c, &metrics::outbox_retries("threads-test"));  // the same series
}

TEST(MetricsTest, IdleConnectionsGaugeGoesUpAndDown) {
  double before = metrics::idle_connections().value();
  metrics::idle_connections().add(2);
  metrics::idle_connections().add(-1);
  EXPECT_EQ(metrics::idle_connections().value(), before + 1);
  EXPECT_EQ(sample(metrics::render_families(), "mailbridge_imap_idle_connections"), before + 1);
  metrics::idle_connections().add(-1);
}

class MetricsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_metrics_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = Store::open((dir_ / "mb.db").string());
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
    mcfg_.name = "metrics-" + std::string(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    mcfg_.project = "IT";
    mcfg_.after = PostAction::mark_read();
    mcfg_.max_per_poll = 100;
    server_ = std::make_shared<FakeServer>();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  Result<SyncStats> sync() {
    FakeMailbox mbx(server_);
    return sync_mailbox(mbx, mcfg_, config_, *store_, SyncOptions{});
  }
  std::string series(const std::string& name, const std::string& labels = "") {
    return name + "{mailbox=\"" + mcfg_.name + "\"" + labels + "}";
  }

  std::filesystem::path dir_;
  Config config_;
  MailboxConfig mcfg_;
  std::shared_ptr<FakeServer> server_;
  std::unique_ptr<Store> store_;
};

std::string mail(const std::string& subject, const std::string& from = "a@example.com") {
  static int n = 0;
  return "From: " + from + "\r\nTo: support@example.com\r\nSubject: " + subject +
         "\r\nMessage-ID: <metrics" + std::to_string(++n) + "@example.com>\r\n\r\nbody\r\n";
}

TEST_F(MetricsStoreTest, IngestCountsImportedSkippedAndErrors) {
  server_->add(mail("printer"));
  server_->add(mail("printer again"));
  server_->add(mail("out of office", "MAILER-DAEMON@example.com"));
  config_.ingest.max_message_bytes = 1024;
  server_->add(mail("big") + std::string(2000, 'x'));
  ASSERT_THAT(sync(), IsOk());
  std::string text = metrics::render(store_.get());
  EXPECT_EQ(sample(text, series("mailbridge_messages_imported_total")), 2) << text;
  EXPECT_EQ(sample(text, series("mailbridge_messages_skipped_total", ",reason=\"too-large\"")),
            1) << text;
  EXPECT_EQ(sample(text, series("mailbridge_messages_skipped_total", ",reason=\"sender-filter\"")),
            1) << text;
  auto state = store_->get_mailbox_state(mcfg_.name);
  ASSERT_THAT(state, IsOk());
  auto success = parse_utc(state->last_success);
  ASSERT_TRUE(success.has_value()) << state->last_success;
  const double when = static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(success->time_since_epoch()).count());
  EXPECT_EQ(sample(text, series("mailbridge_last_success_timestamp_seconds")), when) << text;

  // A failed pass counts its kind and keeps the last success.
  server_->fail_next_list = Status(ErrorKind::kNetwork, "connection reset");
  EXPECT_FALSE(sync().ok());
  text = metrics::render(store_.get());
  EXPECT_EQ(sample(text, series("mailbridge_errors_total", ",kind=\"network\"")), 1) << text;
  EXPECT_EQ(sample(text, series("mailbridge_last_success_timestamp_seconds")), when) << text;
  auto after = store_->get_mailbox_state(mcfg_.name);
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->state, MailboxStatus::kError);
  EXPECT_EQ(after->last_success, state->last_success);
}

TEST_F(MetricsStoreTest, OutboxDepthAndOldestAgeComeFromTheStore) {
  std::string text = metrics::render(store_.get());
  for (const char* state : {"queued", "sending", "sent", "parked"}) {
    EXPECT_EQ(sample(text, "mailbridge_outbox_depth{state=\"" + std::string(state) + "\"}"), 0)
        << state << "\n" << text;
  }
  EXPECT_EQ(sample(text, "mailbridge_outbox_oldest_queued_age_seconds"), 0);
  EXPECT_EQ(sample(text, "mailbridge_store_up"), 1);
  for (int i = 0; i < 2; ++i) {
    OutboxRow row;
    row.kind = "plain";
    row.sender = "out";
    row.env_from = "a@example.com";
    row.recipients = {"b@example.com"};
    row.pending = row.recipients;
    row.raw = "Subject: x\r\n\r\nx\r\n";
    row.message_id = "x" + std::to_string(i) + "@example.com";
    row.next_attempt_at = format_utc(std::chrono::system_clock::now());
    row.created_at = format_utc(std::chrono::system_clock::now() - std::chrono::hours(1));
    auto queued = store_->enqueue_outbox(row, nullptr, nullptr);
    ASSERT_THAT(queued, IsOk());
  }
  text = metrics::render(store_.get());
  EXPECT_EQ(sample(text, "mailbridge_outbox_depth{state=\"queued\"}"), 2) << text;
  double age = sample(text, "mailbridge_outbox_oldest_queued_age_seconds");
  EXPECT_GE(age, 3600) << text;
  EXPECT_LT(age, 3600 + 600) << text;
}

TEST(MetricsRenderTest, WithoutAStoreHasNoStoreFamilies) {
  std::string text = metrics::render(nullptr);
  EXPECT_THAT(text, Not(HasSubstr("mailbridge_outbox_depth")));
  EXPECT_THAT(text, Not(HasSubstr("mailbridge_store_up")));
  EXPECT_THAT(text, HasSubstr("mailbridge_messages_imported_total"));
}

}  // namespace
}  // namespace mb
