// File: core/log_context.cpp — the thread-local mailbox of log lines.
#include "core/log_context.h"

#include <utility>

namespace mb::log_context {
namespace {

std::string& current() {
  thread_local std::string name;
  return name;
}

}  // namespace

const std::string& mailbox() { return current(); }

MailboxScope::MailboxScope(std::string name) : previous_(std::exchange(current(), std::move(name))) {}

MailboxScope::~MailboxScope() { current() = std::move(previous_); }

}  // namespace mb::log_context
