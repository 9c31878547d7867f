// File: connectors/ews/ews_mailbox.h — reading one folder of an Exchange mailbox over EWS:
// the Mailbox interface's test_connection, list_pending and fetch.
//
// list_pending: SyncFolderItems (IdOnly, MaxChangesReturned = the limit, at most 512) from
// the stored SyncState (Pending::next_state; "" the first time: every item of the folder);
// the keys are the ItemIds of the Create changes, oldest first, `more` is
// !IncludesLastItemInRange. An ErrorInvalidSyncStateData (a state Exchange no longer knows)
// starts over from "" — the ledger makes the repeats harmless — and says so in the log.
// fetch: GetItem with IncludeMimeContent, one item a call, the base64 decoded as it arrives
// (mime_stream.h) into the message size limit; past it kTooLarge (scope message), an
// ErrorItemNotFound (moved or deleted meanwhile) kNotFound (scope message).
//
// test_connection: one GetFolder, reported step by step (ews_report.h). The registry builds
// it for `type = "ews"` (ews_config.h).
//
// Not yet (issue 16): apply (UpdateItem IsRead, MoveItem, DeleteItem; every action but
// `leave` is refused with kInternal), FindItem's fallback, folders by display-name path,
// the sender, autodiscover.
//
//   ews::MailboxOptions o{.client = client_options, .folder = "inbox"};
//   auto mbx = ews::make_ews_mailbox(o, SignIn::with_password(secret));
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "connectors/connector.h"
#include "connectors/ews/ews_client.h"
#include "core/mailbox.h"

namespace mb::ews {

struct MailboxOptions {
  ClientOptions client{};
  std::string folder = "inbox";  // a distinguished folder id
  uint64_t max_message_bytes = 25u << 20;
};

std::unique_ptr<Mailbox> make_ews_mailbox(MailboxOptions options, SignIn sign_in,
                                          HttpFactory http = {});

}  // namespace mb::ews
