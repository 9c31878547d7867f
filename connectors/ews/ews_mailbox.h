// File: connectors/ews/ews_mailbox.h — one folder of an Exchange mailbox over EWS as the
// Mailbox interface: test_connection, list_pending, fetch and apply.
//
// The folder (`folder`, and a move's target) is a distinguished folder name or a display-name
// path (ews_folders.h); a source folder that does not exist is a configuration error (kConfig,
// scope mailbox) naming the path.
//
// list_pending: SyncFolderItems (IdOnly, MaxChangesReturned = the limit, at most 512) from
// the stored SyncState (Pending::next_state; "" the first time: every item of the folder);
// the keys are the ItemIds of the Create changes, oldest first, `more` is
// !IncludesLastItemInRange. With `after = mark-read` only unread items are pending (the
// listing asks for message:IsRead), as IMAP lists unseen and Graph unread messages. An
// ErrorInvalidSyncStateData (a state Exchange no longer knows) starts over from "" — the
// ledger makes the repeats harmless — and says so in the log.
// FindItem instead (`listing = kFind`, or from the first SyncFolderItems that Exchange refuses
// with ErrorInvalidOperation or ErrorInvalidRequest — public folders and some archive
// folders — for the rest of this object's life, logged once): IdOnly, oldest first, pages of
// IndexedPageItemView within EWSFindCountLimit (`find_page`, 1000) from Offset until the limit
// or IncludesLastItemInRange. What is pending then is what is in the folder: after `move` and
// `delete` the processed mail has left it, after `mark-read` a Restriction lists unread items
// only; after `leave` the state "find:<offset>:<last ItemId>" resumes past what was listed,
// and starts over from the top (the ledger skips what it has) when the item at that position
// is no longer the one listed (mail above it was removed).
// fetch: GetItem with IncludeMimeContent, one item a call, the base64 decoded as it arrives
// (mime_stream.h) into the message size limit; past it kTooLarge (scope message), an
// ErrorItemNotFound (moved or deleted meanwhile) kNotFound (scope message).
// apply, batched up to 100 ItemIds a request (one response message per id, each judged on
// its own: the others' results stand when one fails):
//   mark-read  UpdateItem setting message:IsRead, ConflictResolution="AlwaysOverwrite" (no
//              ChangeKey is kept: whatever else changed on the item, the flag is ours to set),
//              MessageDisposition="SaveOnly", SuppressReadReceipts;
//   move:F     MoveItem into F, created with its parents when missing (CreateFolder). The
//              item gets a new ItemId there; the ledger keeps the old one, which the source
//              folder no longer lists (SyncFolderItems reports a Delete, ignored). A
//              target that is the folder being read is refused (kConfig): each message
//              would come back under a new id and be imported again;
//   delete     DeleteItem with `delete_type`: MoveToDeletedItems (default; a person can
//              restore it from Deleted Items, as Graph's DELETE) or HardDelete (gone from the
//              folders at once; recoverable only while the mailbox's retention keeps it). A
//              delegate cannot MoveToDeletedItems in another's mailbox (Exchange answers
//              ErrorCannotDeleteObject), so for kDelegate access it is MoveItem into that
//              mailbox's deleteditems.
// An ErrorItemNotFound is success: the item is gone already, most often because an earlier
// run did this very action and was killed before recording it (a repeated MoveItem or
// DeleteItem names an id that no longer exists), or a person moved or deleted it. Other
// per-item errors are kept and the batch goes on; apply then returns the first with scope
// message, counting the failed items (the ingest tries the group again next pass, which the
// rule above makes harmless). Throttling and sign-in errors end the call at once.
//
// test_connection: one GetFolder of the source folder, reported step by step
// (ews_report.h). The registry builds it for `type = "ews"` (ews_config.h).
//
//   ews::MailboxOptions o{.client = client_options, .folder = "Inbox/Support",
//                         .after = PostAction::move("Inbox/Processed")};
//   auto mbx = ews::make_ews_mailbox(o, SignIn::with_password(secret));
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "connectors/connector.h"
#include "connectors/ews/ews_client.h"
#include "connectors/ews/ews_requests.h"
#include "core/mailbox.h"

namespace mb::ews {

// How list_pending reads the folder.
enum class Listing {
  kSync,  // SyncFolderItems, FindItem when Exchange refuses it for the folder
  kFind,  // FindItem always
};

struct MailboxOptions {
  ClientOptions client{};
  std::string folder = "inbox";  // a distinguished folder name or a display-name path
  uint64_t max_message_bytes = 25u << 20;
  // The mailbox's configured post-action: what is pending follows it (mark-read: unread).
  PostAction after = PostAction::leave();
  DeleteType delete_type = DeleteType::kMoveToDeletedItems;
  Listing listing = Listing::kSync;
  size_t find_page = kFindCountLimit;  // FindItem entries a page (the server's EWSFindCountLimit)
};

std::unique_ptr<Mailbox> make_ews_mailbox(MailboxOptions options, SignIn sign_in,
                                          HttpFactory http = {});

}  // namespace mb::ews
