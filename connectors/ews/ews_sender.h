// File: connectors/ews/ews_sender.h — the EWS connector behind the Sender interface
// (core/sender.h): CreateItem with MessageDisposition="SendAndSaveCopy" (the copy in the
// sending mailbox's Sent Items, SavedItemFolderId sentitems with the delegate's Mailbox
// element when access is delegate) or "SendOnly" (save_to_sent_items = false), carrying our
// composed message as base64 t:MimeContent — encoded straight into the one request body,
// which is moved into the HTTP request and never copied again.
//
// Envelope recipients that no To or Cc header names (Bcc) go to Exchange as a Bcc header put
// in front of the MIME: Exchange takes a MIME submission's recipients from its headers, and
// removes Bcc from what it delivers.
//
// In doubt, as for SMTP and Graph: once the CreateItem request is on the wire the outbox hears
// of it (OutgoingMail::on_handed_over, once); a lost answer afterwards — the connection dropped,
// a time-out, an answer that is not EWS — is returned as an error that is not a server answer
// (is_server_answer false, "Exchange may have sent the message"), so the outbox never sends it
// again silently ([outbox] in_doubt decides). What Exchange refused before acting is a server
// answer: ErrorServerBusy (waited out by ews_client, then kThrottled), HTTP 401/403 and the
// access codes (kAuth), any other error response message (kRejected, e.g. ErrorSendAsDenied).
// Exchange answers once the message is submitted, not delivered: SendResult::queued_only.
//
// With `client.endpoint` empty the EWS URL is found by autodiscover (ews_autodiscover.h) on
// first use, for the address `client.mailbox`, and kept; test_connection reports each of its
// steps.
//
//   ews::SenderOptions o{.client = {.mailbox = "helpdesk@corp.example",
//                                   .method = ews::SignInMethod::kNtlm, .user = "CORP\\svc"}};
//   auto sender = ews::make_ews_sender(o, SignIn::with_password(secret));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/connector.h"
#include "connectors/ews/ews_client.h"
#include "core/sender.h"

namespace mb::ews {

struct SenderOptions {
  ClientOptions client{};  // endpoint ("" = autodiscover), the sending mailbox, sign-in, access
  bool save_to_sent_items = true;  // SendAndSaveCopy into sentitems; false: SendOnly
  // Autodiscover only (ews_autodiscover.h): prefer InternalEwsUrl; tests' host mapping.
  bool prefer_internal_url = false;
  std::vector<std::string> autodiscover_connect_to{};
};

// Builds the EWS Sender. Does not connect. `http` empty: make_curl_http_client.
std::unique_ptr<Sender> make_ews_sender(SenderOptions options, SignIn sign_in,
                                        HttpFactory http = {});

// The CreateItem operation element for `mail` (tests): SendAndSaveCopy with `saved_folder`
// (a folder id element) or SendOnly when it is empty, the MIME in base64 with `bcc` put in
// front as a header line when not empty. Appends to `out`.
void append_create_item(std::string& out, std::string_view raw, std::string_view bcc_line,
                        std::string_view saved_folder);

// The envelope recipients that neither To nor Cc of `raw`'s header names, compared
// case-insensitively: the Bcc recipients.
std::vector<std::string> blind_recipients(std::string_view raw,
                                          const std::vector<std::string>& recipients);

}  // namespace mb::ews
