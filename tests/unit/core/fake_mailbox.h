// File: tests/unit/core/fake_mailbox.h — an in-memory Mailbox for ingest tests.
//
// FakeServer holds raw messages with IMAP-like keys ("7:<uid>"), a seen flag, a folder and a
// deleted flag; FakeMailbox is a connection to it, so a test can drop a connection, make a
// new one and see the same server. Failures are injected by call count, to stop a sync at
// any step: list_pending (once, or N times kNetwork), the N-th message fetched (connection
// drop), the N-th apply (before or after it changed the server), or one message's fetch (a
// message-scoped error, or any Status given per key, e.g. kTooLarge). Fetches are counted
// per key. HangingMailbox hangs in fetch until the thread's Cancel fires; PushMailbox waits
// for news the test sends (wait_for_change).
//
//   auto server = std::make_shared<FakeServer>();
//   server->add("Subject: hi\r\n\r\nbody\r\n");
//   FakeMailbox mbx(server);
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/cancel.h"
#include "core/mailbox.h"
#include "core/status.h"

namespace mb::testing {

struct FakeMessage {
  std::string key;
  uint64_t uid = 0;
  std::string raw;
  std::string folder = "INBOX";
  bool seen = false;
  bool deleted = false;
};

struct FakeServer {
  std::vector<FakeMessage> messages;
  uint64_t next_uid = 1;
  // Like IMAP with after = mark-read: only unseen messages are pending.
  bool list_unseen_only = true;
  // Like IMAP's mark-read listing (UID SEARCH UNSEEN): the state cursor is not used, so
  // messages left unseen on purpose are listed again on every poll.
  bool ignore_cursor = false;

  // Call counters (cumulative over every connection).
  int list_calls = 0;
  int messages_fetched = 0;
  int apply_calls = 0;
  std::vector<std::pair<std::vector<std::string>, std::string>> apply_log;

  // Failure injection; 0 / empty means "never".
  std::optional<Status> fail_next_list;  // returned once by the next list_pending
  int network_failures = 0;              // the next N list_pending calls fail with kNetwork
  int fail_fetch_at = 0;                 // the N-th message fetched drops the connection
  int fail_apply_at = 0;                 // the N-th apply drops before changing anything
  int fail_apply_after_effect_at = 0;    // the N-th apply changes the server, then drops
  std::set<std::string> message_errors;  // keys whose fetch is a kMessage error
  std::map<std::string, Status> fetch_errors;  // keys whose fetch gets this error instead
  std::map<std::string, int> fetches;          // how often each key was handed over

  std::string add(std::string raw) {
    FakeMessage m;
    m.uid = next_uid++;
    m.key = "7:" + std::to_string(m.uid);
    m.raw = std::move(raw);
    messages.push_back(std::move(m));
    return messages.back().key;
  }

  FakeMessage* find(const std::string& key) {
    for (auto& m : messages) {
      if (m.key == key) return &m;
    }
    return nullptr;
  }

  // Readable server state for comparisons: "7:1 INBOX seen" per line.
  std::string describe() const {
    std::string out;
    for (const auto& m : messages) {
      out += m.key + " " + (m.deleted ? "(deleted)" : m.folder) + (m.seen ? " seen" : "") + "\n";
    }
    return out;
  }
};

class FakeMailbox : public Mailbox {
 public:
  explicit FakeMailbox(std::shared_ptr<FakeServer> server) : server_(std::move(server)) {}

  ConnectionReport test_connection() override {
    ConnectionReport r;
    r.steps.push_back({"count", true, std::to_string(server_->messages.size())});
    r.message_count = server_->messages.size();
    return r;
  }

  Result<Pending> list_pending(size_t limit, const std::string& state) override {
    ++server_->list_calls;
    if (server_->fail_next_list) {
      Status s = *server_->fail_next_list;
      server_->fail_next_list.reset();
      return s;
    }
    if (server_->network_failures > 0) {
      --server_->network_failures;
      return Status(ErrorKind::kNetwork, "connection refused", ErrorScope::kConnection);
    }
    uint64_t after = 0;
    if (!server_->ignore_cursor && state.rfind("7:", 0) == 0) after = std::stoull(state.substr(2));
    Pending p;
    uint64_t highest = after;
    for (const auto& m : server_->messages) {
      if (m.deleted || m.folder != "INBOX" || m.uid <= after) continue;
      if (server_->list_unseen_only && m.seen) continue;
      if (p.keys.size() == limit) {
        p.more = true;
        break;
      }
      p.keys.push_back(m.key);
      highest = m.uid;
    }
    // Like IMAP's UIDNEXT - 1: when nothing is left over, every UID so far has been seen.
    if (!p.more) highest = std::max(highest, server_->next_uid - 1);
    p.next_state = "7:" + std::to_string(highest);
    return p;
  }

  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override {
    for (const auto& key : keys) {
      ++server_->messages_fetched;
      if (server_->messages_fetched == server_->fail_fetch_at) {
        return Status(ErrorKind::kNetwork, "connection reset during FETCH",
                      ErrorScope::kConnection);
      }
      Status s;
      FakeMessage* m = server_->find(key);
      ++server_->fetches[key];
      if (auto e = server_->fetch_errors.find(key); e != server_->fetch_errors.end()) {
        s = cb(key, e->second);
      } else if (server_->message_errors.count(key) != 0) {
        s = cb(key, Status(ErrorKind::kRejected, "FETCH " + key + " failed", ErrorScope::kMessage));
      } else if (m == nullptr || m->deleted || m->folder != "INBOX") {
        s = cb(key, Status(ErrorKind::kNotFound, "no message " + key, ErrorScope::kMessage));
      } else {
        s = cb(key, m->raw);
      }
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  Status apply(const std::vector<std::string>& keys, const PostAction& action) override {
    int call = ++server_->apply_calls;
    if (call == server_->fail_apply_at) {
      return Status(ErrorKind::kNetwork, "connection reset before STORE", ErrorScope::kConnection);
    }
    server_->apply_log.emplace_back(keys, action.to_string());
    for (const auto& key : keys) {
      FakeMessage* m = server_->find(key);
      // Idempotent: already gone (an interrupted run got this far) is fine.
      if (m == nullptr || m->deleted || m->folder != "INBOX") continue;
      switch (action.kind) {
        case PostAction::Kind::kMarkRead: m->seen = true; break;
        case PostAction::Kind::kDelete: m->deleted = true; break;
        case PostAction::Kind::kMove: m->folder = action.folder; break;
        case PostAction::Kind::kLeave: break;
        default: break;
      }
    }
    if (call == server_->fail_apply_after_effect_at) {
      return Status(ErrorKind::kNetwork, "connection reset after STORE", ErrorScope::kConnection);
    }
    return Status::Ok();
  }

  Capabilities capabilities() const override { return {}; }
  void close() override {}

 protected:
  std::shared_ptr<FakeServer> server_;
};

// A server that accepts and never answers: fetch blocks until the thread's Cancel
// (core/cancel.h) fires, then returns kCancelled as a woken read would.
class HangingMailbox : public FakeMailbox {
 public:
  using FakeMailbox::FakeMailbox;
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override {
    Cancel* cancel = CancelScope::current();
    if (cancel == nullptr) return Status(ErrorKind::kInternal, "no Cancel installed");
    entered.fire();
    while (!cancel->wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1))) {
    }
    return Cancel::cancelled("reading FETCH");
  }
  Cancel entered;  // fires when fetch starts hanging
};

// A connector that can push: wait_for_change blocks until the test calls notify(), the
// deadline passes or the thread's Cancel fires.
class PushMailbox : public FakeMailbox {
 public:
  struct Channel {
    std::mutex mu;
    std::condition_variable cv;
    int news = 0;     // notify() calls not yet seen
    int waiting = 0;  // threads in wait_for_change now
    int closes = 0;
    void notify() {
      std::lock_guard lock(mu);
      ++news;
      cv.notify_all();
    }
  };
  PushMailbox(std::shared_ptr<FakeServer> server, std::shared_ptr<Channel> channel)
      : FakeMailbox(std::move(server)), channel_(std::move(channel)) {}
  Capabilities capabilities() const override {
    Capabilities c;
    c.push = true;
    return c;
  }
  Result<ChangeWait> wait_for_change(std::chrono::steady_clock::time_point deadline) override {
    Cancel* cancel = CancelScope::current();
    uint64_t handle = cancel ? cancel->on_fire([this] {
      std::lock_guard lock(channel_->mu);
      channel_->cv.notify_all();
    }) : 0;
    std::unique_lock lock(channel_->mu);
    ++channel_->waiting;
    channel_->cv.notify_all();
    bool news = channel_->cv.wait_until(lock, deadline, [&] {
      return channel_->news > 0 || (cancel && cancel->fired());
    });
    --channel_->waiting;
    const bool changed = channel_->news > 0;
    if (changed) --channel_->news;
    lock.unlock();
    if (cancel) cancel->remove_callback(handle);
    if (changed) return ChangeWait::kChanged;
    if (cancel && cancel->fired()) return Cancel::cancelled("waiting in IDLE");
    (void)news;
    return ChangeWait::kTimedOut;
  }
  void close() override {
    std::lock_guard lock(channel_->mu);
    ++channel_->closes;
  }

 private:
  std::shared_ptr<Channel> channel_;
};

}  // namespace mb::testing
