// File: core/log_context.h — what a log line is about, for structured logs: the mailbox
// the current thread works for.
//
// sync_mailbox() sets it for the length of a pass, so that `--log-format json` lines carry
// a "mailbox" field without every log call naming it (the text of a line still says
// "mailbox NAME: …"). Thread-local: each mailbox's pass runs on its own thread, and the
// logger formats a line on the thread that logs it.
//
//   { log_context::MailboxScope scope("support"); spdlog::info("…"); }  // mailbox "support"
#pragma once

#include <string>

namespace mb::log_context {

// The mailbox the calling thread works for; "" when none.
const std::string& mailbox();

// Sets mailbox() for the calling thread until destroyed, then restores the previous value.
class MailboxScope {
 public:
  explicit MailboxScope(std::string name);
  ~MailboxScope();
  MailboxScope(const MailboxScope&) = delete;
  MailboxScope& operator=(const MailboxScope&) = delete;

 private:
  std::string previous_;
};

}  // namespace mb::log_context
