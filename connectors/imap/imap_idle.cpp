// File: connectors/imap/imap_idle.cpp — the client's waiting commands: NOOP and IDLE
// (RFC 2177), whose wait ends at a time the caller picks rather than at the response
// time-out.
#include "connectors/imap/imap_client.h"

#include <chrono>

namespace mb::imap {
Status Client::idle_start() {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "IDLE"));
  if (idling_) return Status(ErrorKind::kInternal, "IMAP IDLE is already running");
  idle_tag_ = begin_command("IDLE");
  Status sent = channel_->write_line(idle_tag_ + " IDLE");
  auto r = sent.ok() ? read_until_continuation(idle_tag_) : Result<ImapResponse>(sent);
  if (channel_) channel_->end_step();
  if (!r.ok()) return fail(r.status());
  if (r->kind == ImapResponse::Kind::kContinuation) {
    idling_ = true;
    return Status::Ok();
  }
  if (r->condition == Condition::kOk) {
    return fail(protocol_violation("IMAP server ended IDLE before accepting it (no \"+\")"));
  }
  return fail(command_failure(*r, "IDLE"));
}

// One step that ends at `until`: the per-read limit on silence is lifted to match, since a
// quiet folder is what IDLE waits through. Reaching `until` between two responses is the
// normal end; anywhere else (a response cut in the middle) the connection is out of step.
Result<bool> Client::idle_wait(std::chrono::steady_clock::time_point until) {
  using Clock = std::chrono::steady_clock;
  MB_RETURN_IF_ERROR(require({State::kSelected}, "IDLE"));
  if (!idling_) return Status(ErrorKind::kInternal, "IMAP IDLE is not running");
  auto budget = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
  if (new_mail_ || budget.count() <= 0) return new_mail_;
  command_ = "IDLE";
  untagged_ = 0;
  body_bytes_ = 0;
  channel_->set_timeout(budget);
  channel_->begin_step("news during IDLE", budget);
  // The wait may last the whole period: hold a small receive buffer through it, not the
  // one the last large answer grew (the service keeps one IDLE per mailbox).
  channel_->release_buffer();
  Status s;
  while (!new_mail_ && s.ok()) {
    auto r = read_response();
    if (!r.ok()) {
      s = r.status();
    } else if (r->kind == ImapResponse::Kind::kContinuation) {
      s = protocol_violation("IMAP server sent an unexpected continuation during IDLE");
    } else if (r->kind == ImapResponse::Kind::kTagged) {
      if (r->tag != idle_tag_) return fail(protocol_violation("IMAP server answered unknown tag " + r->tag));
      idling_ = false;  // the server ended the IDLE itself
      if (r->condition != Condition::kOk) s = command_failure(*r, "IDLE");
      break;
    } else {
      ++untagged_;
      s = check_answer_bounds(0);
      if (s.ok()) s = note_untagged(*r);
    }
  }
  if (!channel_) return s.ok() ? Status(ErrorKind::kNetwork, "IMAP connection is closed",
                                        ErrorScope::kConnection) : s;
  channel_->end_step();
  channel_->set_timeout(options_.timeouts.response);
  bool period_over = s.kind() == ErrorKind::kNetwork && Clock::now() >= until &&
                     parser_.between_responses();
  if (!s.ok() && !period_over) return fail(s);
  return new_mail_;
}

Status Client::idle_done() {
  if (!idling_) return Status::Ok();
  idling_ = false;
  if (!channel_) return require({State::kSelected}, "DONE");
  command_ = "IDLE";
  untagged_ = 0;
  body_bytes_ = 0;
  channel_->begin_step("the end of IDLE", options_.timeouts.response);
  Status sent = channel_->write_line("DONE");
  auto r = sent.ok() ? read_until_tagged(idle_tag_, {}) : Result<ImapResponse>(sent);
  if (channel_) channel_->end_step();
  if (!r.ok()) return fail(r.status());
  if (r->condition != Condition::kOk) return fail(command_failure(*r, "IDLE"));
  return Status::Ok();
}

}  // namespace mb::imap
