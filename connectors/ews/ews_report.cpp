// File: connectors/ews/ews_report.cpp — test-connection's report for an EWS folder
// (ews_report.h).
#include "connectors/ews/ews_report.h"

#include <array>

#include <fmt/format.h>

#include "core/connector_types.h"

namespace mb::ews {
namespace {

constexpr std::array<std::string_view, 5> kSteps = {"endpoint", "sign-in", "access",
                                                    "open-folder", "count"};

std::string method_detail(const ClientOptions& o) {
  switch (o.method) {
    case SignInMethod::kBasic: return "Basic as " + o.user;
    case SignInMethod::kNtlm: return "NTLM as " + o.user;
    case SignInMethod::kBearer: return "OAuth bearer token (app registration)";
  }
  return "";
}

std::string access_detail(const ClientOptions& o) {
  switch (o.access) {
    case Access::kOwn: return "own mailbox " + o.mailbox;
    case Access::kImpersonation: return "impersonation of " + o.mailbox + " (ExchangeImpersonation)";
    case Access::kDelegate: return "delegate of " + o.mailbox + " (FullAccess)";
  }
  return o.mailbox;
}

uint64_t count_of(pugi::xml_node folder, std::string_view name) {
  std::string text = child_text(folder, name);
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 18) {
    return 0;
  }
  return std::stoull(text);
}

}  // namespace

std::string_view failed_step(const Status& status) {
  switch (status.kind()) {
    case ErrorKind::kNetwork:
    case ErrorKind::kTls:
    case ErrorKind::kCancelled: return "endpoint";
    case ErrorKind::kAuth: break;
    default: return "open-folder";
  }
  const std::string& m = status.message();
  for (std::string_view access : {"HTTP 403", "ErrorAccessDenied", "ErrorImpersonateUserDenied",
                                  "ErrorNonExistentMailbox",
                                  "ErrorInvalidExchangeImpersonationHeaderData"}) {
    if (m.find(access) != std::string::npos) return "access";
  }
  return "sign-in";
}

ConnectionReport folder_report(Client& client, std::string_view folder_name,
                               const std::string& folder_id) {
  const ClientOptions& o = client.options();
  const std::string what = client.who() + ": GetFolder " + std::string(folder_name);
  auto r = client.call("GetFolder",
                       "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape>"
                       "</m:FolderShape><m:FolderIds>" + folder_id + "</m:FolderIds></m:GetFolder>",
                       true);
  Status s = !r.ok()                   ? r.status()
             : r->messages.size() != 1 ? Status(ErrorKind::kProtocol, what + ": one answer expected")
                                       : message_status(r->messages[0], what);
  const std::string_view failed = s.ok() ? std::string_view() : failed_step(s);
  const std::string version = r.ok() && !r->server_version.empty() ? r->server_version : "(not sent)";
  pugi::xml_node folder = s.ok() ? child(child(r->messages[0].node, "Folders"), "Folder") : pugi::xml_node();
  const std::string display = child_text(folder, "DisplayName");
  const uint64_t total = count_of(folder, "TotalCount");
  const std::array<std::string, 5> details = {
      o.endpoint + (exchange_online_endpoint(o.endpoint) ? " (Exchange Online)" : ""),
      method_detail(o) + ", Exchange " + version,
      access_detail(o),
      std::string(folder_name) + (display.empty() ? "" : " (" + display + ")"),
      fmt::format("{} messages, {} unread", total, count_of(folder, "UnreadCount"))};
  ConnectionReport report;
  for (size_t i = 0; i < kSteps.size(); ++i) {
    if (kSteps[i] == failed) {
      report.steps.push_back({std::string(kSteps[i]), false, s.message()});
      break;
    }
    report.steps.push_back({std::string(kSteps[i]), true, details[i]});
  }
  if (s.ok()) report.message_count = total;
  report.status = s;
  return report;
}

}  // namespace mb::ews
