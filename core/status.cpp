// File: core/status.cpp
#include "core/status.h"

namespace mb {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk: return "ok";
    case ErrorKind::kAuth: return "auth";
    case ErrorKind::kNetwork: return "network";
    case ErrorKind::kTls: return "tls";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kRejected: return "rejected";
    case ErrorKind::kThrottled: return "throttled";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kConfig: return "config";
    case ErrorKind::kInvalidInput: return "invalid_input";
    case ErrorKind::kTooLarge: return "too_large";
    case ErrorKind::kInternal: return "internal";
    case ErrorKind::kBusy: return "busy";
    case ErrorKind::kCancelled: return "cancelled";
    default: return "unknown";
  }
}

Status Status::prefixed(const std::string& context) const {
  if (ok()) return *this;
  Status s(kind_, context + ": " + message_, scope_);
  s.retry_after_ = retry_after_;
  return s;
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(mb::to_string(kind_)) + ": " + message_;
}

}  // namespace mb
