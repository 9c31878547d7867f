// File: connectors/ews/ews_report.h — test-connection's report for one EWS folder (what
// `mailbridge test-connection` and `doctor` print): the steps endpoint (the URL, reached),
// sign-in (the method and account, Exchange's version from the answer's ServerVersionInfo),
// access (own mailbox, impersonation or delegate, and of which mailbox), open-folder (its
// display name) and count (total and unread), from one GetFolder; a failure ends the report
// at the step it belongs to (failed_step), in the client's administrator words.
//
//   ConnectionReport r = ews::folder_report(client, "inbox", client.folder("inbox"));
#pragma once

#include <string>
#include <string_view>

#include "connectors/ews/ews_client.h"
#include "core/mailbox.h"

namespace mb::ews {

// Runs GetFolder on `folder_id` (the FolderId or DistinguishedFolderId element, as XML) and
// reports it; `folder_name` is how the configuration names it.
ConnectionReport folder_report(Client& client, std::string_view folder_name,
                               const std::string& folder_id);

// The step a failed call's status belongs to: "endpoint" (network, TLS: nothing answered),
// "sign-in" (HTTP 401, a token that could not be had), "access" (HTTP 403, and Exchange's
// ErrorAccessDenied, ErrorImpersonateUserDenied, ErrorNonExistentMailbox,
// ErrorInvalidExchangeImpersonationHeaderData) or "open-folder" (anything else).
std::string_view failed_step(const Status& status);

}  // namespace mb::ews
