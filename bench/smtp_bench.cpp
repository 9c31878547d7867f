// File: bench/smtp_bench.cpp — mb_smtp_bench: N messages through the test SMTP server of
// tests/harness/smtp.sh, with and without one_message_per_connection, and msgs/s for each.
// Prints one JSON line per run; exits 1 unless the server holds exactly N new messages and
// the number of SMTP sessions it counted is what the mode implies (1 kept connection, or N).
//
//   mb_smtp_bench --smtp-env DIR/env [--messages 10000] [--mode outbox|sender]
//                 [--one-per-connection] [--port submission|smtps|relay]
//                 [--greet-delay-ms 0]
//
// The server's pause before each greeting (smtp-server holds every new connection 100 ms to
// catch clients that talk too soon) is set to --greet-delay-ms, 0 by default, so that the
// per-connection figures measure mailbridge and TLS rather than that pause.
// --mode outbox (default): the messages are queued first as tracked mail about 100 tickets
// (core/outbox: compose, HMAC cookie, email-out note, outbox row, one transaction each) in a
// fresh store, then one Outbox::flush() sends them all — the code path of `mailbridge outbox
// flush`; queueing and flushing are timed apart. --mode sender: the same number of messages,
// composed up front, straight through Sender::send (the SMTP connector alone).
// In outbox mode the line also holds handover_record_us (p50/p99/max of recording each
// message's hand-over: the log's pwrite and the store's commit) and handover_log_write_us
// (the pwrite alone, 10,000 times: the only window in which a crash sends a message twice).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "connectors/smtp/smtp_sender.h"
#include "core/compose.h"
#include "core/handover_log.h"
#include "core/http.h"
#include "core/outbox.h"
#include "core/store.h"

namespace mb {
namespace {

using Steady = std::chrono::steady_clock;
using Env = std::map<std::string, std::string>;

constexpr int kTickets = 100;

struct Options {
  std::string smtp_env;
  int messages = 10000;
  std::string mode = "outbox";
  bool one_per_connection = false;
  std::string port = "submission";
  int greet_delay_ms = 0;  // the server's pause before its greeting (smtp-server: 100)
};

Env read_env(const std::string& path) {
  Env out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

Result<nlohmann::json> admin(const Env& env, const std::string& method, const std::string& path,
                             const nlohmann::json& body = nlohmann::json::object()) {
  HttpOptions o;
  o.allow_plain_http = true;
  o.timeouts = Timeouts{std::chrono::seconds(10), std::chrono::seconds(120)};
  auto http = make_http_client(o);
  HttpRequest req;
  req.method = method;
  req.url = env.at("MB_SMTP_ADMIN_URL") + path;
  if (method == "POST") {
    req.headers = {{"Content-Type", "application/json"}};
    req.body = body.dump();
  }
  auto r = http->send(req);
  if (!r.ok()) return r.status();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || j.is_discarded()) {
    return Status(ErrorKind::kInternal, "admin " + path + ": HTTP " + std::to_string(r->status));
  }
  return j;
}

SenderConfig sender_config(const Env& env, const Options& o) {
  SenderConfig c;
  c.name = "outgoing";
  c.type = ConnectorType::kSmtp;
  c.host = env.at("MB_SMTP_HOST");
  c.user = "support@bench.test";
  c.tls.ca_file = env.at("MB_SMTP_CA_FILE");
  c.one_message_per_connection = o.one_per_connection;
  c.helo_name = "bench.mailbridge.test";
  if (o.port == "smtps") {
    c.port = static_cast<uint16_t>(std::stoi(env.at("MB_SMTP_SMTPS_PORT")));
    c.security = Security::kTls;
  } else {
    const char* key = o.port == "relay" ? "MB_SMTP_RELAY_PORT" : "MB_SMTP_SUBMISSION_PORT";
    c.port = static_cast<uint16_t>(std::stoi(env.at(key)));
    c.security = Security::kStartTls;
  }
  c.auth = o.port == "relay" ? AuthMethod::kNone : AuthMethod::kPassword;
  return c;
}

std::unique_ptr<Sender> make_sender(const Env& env, const Options& o) {
  SignIn s;
  if (o.port == "relay") s.none = true;
  else s.password = env.at("MB_SMTP_PASSWORD");
  return make_smtp_sender(sender_config(env, o), std::move(s));
}

// The configuration tracked mail needs: the tracking mailbox, its sender, a technician.
Config bench_config(const Env& env, const Options& o) {
  Config cfg;
  MailboxConfig support;
  support.name = "support";
  support.type = ConnectorType::kImap;
  support.user = "support@bench.test";
  support.address = "support@bench.test";
  cfg.mailboxes = {support};
  cfg.senders = {sender_config(env, o)};
  cfg.tracking.mailbox = "support";
  cfg.tracking.sender = "outgoing";
  cfg.users = {{"ann@bench.test", "Ann Tech", "technician"}};
  cfg.outbox.max_attempts = 3;
  return cfg;
}

std::string body_text(int i) {
  std::string t = "Hello,\n\nthis is message " + std::to_string(i) + " of the SMTP benchmark.\n";
  for (int l = 0; l < 20; ++l) t += "A line of ordinary text to give the message a usual size.\n";
  return t;
}

struct Run {
  double queue_seconds = 0;
  double send_seconds = 0;
  int64_t sent = 0;
  int64_t failed = 0;
  std::string error;
  // --mode outbox: how long the outbox's on_handed_over took per message (the hand-over
  // log's pwrite, then the commit of handed_over_at), in microseconds.
  std::vector<double> handover_us;
  // --mode outbox: one HandoverLog::handed_over (the pwrite alone) beside the same store,
  // 10,000 times: the window in which a crash sends a message twice is the gap between the
  // write of SMTP's "." and this call's return (docs/reliability.md, "The outbox").
  std::vector<double> log_write_us;
};

// Passes every call through to the SMTP Sender, timing the outbox's on_handed_over.
class TimedSender : public Sender {
 public:
  TimedSender(std::unique_ptr<Sender> inner, std::vector<double>& us)
      : inner_(std::move(inner)), us_(us) {}
  Result<SendResult> send(const OutgoingMail& mail) override {
    OutgoingMail timed = mail;
    if (mail.on_handed_over) {
      timed.on_handed_over = [&](const SendResult& so_far) {
        auto t0 = Steady::now();
        mail.on_handed_over(so_far);
        us_.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
      };
    }
    return inner_->send(timed);
  }
  ConnectionReport test_connection() override { return inner_->test_connection(); }
  void close() override { inner_->close(); }

 private:
  std::unique_ptr<Sender> inner_;
  std::vector<double>& us_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

Run run_outbox(const Env& env, const Options& o, const std::string& dir) {
  Run run;
  auto store = Store::open(dir + "/bench.db");
  if (!store.ok()) return Run{0, 0, 0, 0, store.status().message(), {}, {}};
  // 100 tickets, as a help desk has many: each gets 1/100 of the mail (an email-out note each).
  std::vector<int64_t> tickets;
  for (int i = 0; i < kTickets; ++i) {
    Ticket t;
    t.project = "IT";
    t.subject = "Benchmark ticket " + std::to_string(i);
    t.requester = "customer" + std::to_string(i) + "@example.test";
    Note first;
    first.author = t.requester;
    first.text = "help";
    auto ticket = (*store)->create_ticket(t, first);
    if (!ticket.ok()) return Run{0, 0, 0, 0, ticket.status().message(), {}, {}};
    tickets.push_back(*ticket);
  }
  Config cfg = bench_config(env, o);
  Outbox outbox(**store, cfg, "bench-tracking-secret-0123456789abcdef");
  auto q0 = Steady::now();
  for (int i = 0; i < o.messages; ++i) {
    TrackedMail m;
    m.ticket_id = tickets[static_cast<size_t>(i % kTickets)];
    m.user = "ann@bench.test";
    m.to = {{"", "customer" + std::to_string(i % 100) + "@example.test"}};
    m.subject = "Your request";
    m.text = body_text(i);
    auto row = outbox.queue_tracked(m);
    if (!row.ok()) return Run{0, 0, 0, 0, row.status().message(), {}, {}};
  }
  run.queue_seconds = std::chrono::duration<double>(Steady::now() - q0).count();
  auto s0 = Steady::now();
  auto stats = outbox.flush([&](const std::string&) -> Result<std::unique_ptr<Sender>> {
    return std::unique_ptr<Sender>(new TimedSender(make_sender(env, o), run.handover_us));
  });
  run.send_seconds = std::chrono::duration<double>(Steady::now() - s0).count();
  if (!stats.ok()) return Run{0, 0, 0, 0, stats.status().message(), {}, {}};
  run.sent = stats->sent;
  run.failed = stats->retrying + stats->parked;
  HandoverLog log(HandoverLog::path_for((*store)->path(), "bench:1"));
  for (int i = 1; i <= 10000; ++i) {
    log.starting(i);
    auto t0 = Steady::now();
    log.handed_over(i);
    run.log_write_us.push_back(
        std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
  }
  log.remove();
  if (!stats->errors.empty()) run.error = stats->errors.front();
  return run;
}

Run run_sender(const Env& env, const Options& o) {
  Run run;
  std::vector<OutgoingMail> mails;
  auto q0 = Steady::now();
  for (int i = 0; i < o.messages; ++i) {
    MailSpec spec;
    spec.from = {"Help Desk", "support@bench.test"};
    spec.to = {{"", "customer" + std::to_string(i % 100) + "@example.test"}};
    spec.subject = "Your request";
    spec.text = body_text(i);
    auto m = compose_message(spec);
    if (!m.ok()) return Run{0, 0, 0, 0, m.status().message(), {}, {}};
    mails.push_back(OutgoingMail{std::to_string(i), m->envelope, m->raw, {}});
  }
  run.queue_seconds = std::chrono::duration<double>(Steady::now() - q0).count();
  auto sender = make_sender(env, o);
  auto s0 = Steady::now();
  for (const auto& m : mails) {
    auto r = sender->send(m);
    if (r.ok()) {
      ++run.sent;
    } else {
      ++run.failed;
      if (run.error.empty()) run.error = r.status().message();
    }
  }
  sender->close();
  run.send_seconds = std::chrono::duration<double>(Steady::now() - s0).count();
  return run;
}

int run_bench(const Options& o) {
  Env env = read_env(o.smtp_env);
  if (!env.count("MB_SMTP_ADMIN_URL")) {
    std::fprintf(stderr, "mb_smtp_bench: no SMTP harness env at %s\n", o.smtp_env.c_str());
    return 2;
  }
  if (auto r = admin(env, "POST", "/reset"); !r.ok()) {
    std::fprintf(stderr, "mb_smtp_bench: %s\n", r.status().message().c_str());
    return 2;
  }
  if (auto r = admin(env, "POST", "/faults", {{"greet_delay_ms", o.greet_delay_ms}}); !r.ok()) {
    std::fprintf(stderr, "mb_smtp_bench: %s\n", r.status().message().c_str());
    return 2;
  }
  auto dir = std::filesystem::temp_directory_path() /
             ("mb_smtp_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Run run = o.mode == "sender" ? run_sender(env, o) : run_outbox(env, o, dir.string());
  std::filesystem::remove_all(dir);
  auto counters = admin(env, "GET", "/counters");
  int64_t received = counters.ok() ? (*counters)["messages"].get<int64_t>() : -1;
  int64_t sessions = counters.ok() ? (*counters)["sessions"].get<int64_t>() : -1;
  int64_t want_sessions = o.one_per_connection ? o.messages : 1;
  bool ok = run.error.empty() && run.sent == o.messages && received == o.messages &&
            sessions == want_sessions;
  nlohmann::json out = {
      {"mode", o.mode}, {"port", o.port}, {"one_message_per_connection", o.one_per_connection},
      {"messages", o.messages}, {"greet_delay_ms", o.greet_delay_ms}, {"sent", run.sent},
      {"failed", run.failed},
      {"server_received", received}, {"server_sessions", sessions},
      {o.mode == "sender" ? "compose_seconds" : "queue_seconds", run.queue_seconds},
      {"send_seconds", run.send_seconds},
      {"msgs_per_second", run.send_seconds > 0 ? run.sent / run.send_seconds : 0.0},
      {"ok", ok}};
  if (!run.error.empty()) out["first_error"] = run.error;
  auto summary = [](const std::vector<double>& us) {
    return nlohmann::json{{"count", us.size()}, {"p50", percentile(us, 0.50)},
                          {"p99", percentile(us, 0.99)}, {"max", percentile(us, 1.0)}};
  };
  if (!run.handover_us.empty()) out["handover_record_us"] = summary(run.handover_us);
  if (!run.log_write_us.empty()) out["handover_log_write_us"] = summary(run.log_write_us);
  std::printf("%s\n", out.dump().c_str());
  admin(env, "POST", "/reset").status().ignore();  // leave no 10,000 files behind
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace mb

int main(int argc, char** argv) {
  mb::Options o;
  CLI::App app("mb_smtp_bench — messages through the test SMTP server, msgs/s");
  app.add_option("--smtp-env", o.smtp_env, "tests/harness/smtp.sh's DIR/env")->required();
  app.add_option("--messages", o.messages, "how many messages")->check(CLI::Range(1, 1000000));
  app.add_option("--mode", o.mode, "outbox (queue, then flush) or sender (Sender::send)")
      ->check(CLI::IsMember({"outbox", "sender"}));
  app.add_flag("--one-per-connection", o.one_per_connection, "one_message_per_connection = true");
  app.add_option("--port", o.port, "submission (STARTTLS), smtps (implicit TLS) or relay")
      ->check(CLI::IsMember({"submission", "smtps", "relay"}));
  app.add_option("--greet-delay-ms", o.greet_delay_ms,
                 "the server's pause before each greeting (smtp-server's default is 100)")
      ->check(CLI::Range(0, 60000));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  return mb::run_bench(o);
}
