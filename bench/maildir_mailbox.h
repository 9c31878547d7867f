// File: bench/maildir_mailbox.h — a Mailbox over a local Maildir folder, for the benchmark:
// it takes the network and the IMAP server out of the measurement, so that the ingest
// pipeline alone (parse, decide, commit) can be timed on the same messages.
#pragma once

#include <memory>
#include <string>

#include "core/mailbox.h"

namespace mb {

// Messages are the files of DIR/cur and DIR/new, keyed by file name and listed in name
// order; fetch() returns them with CRLF line ends, as an IMAP server would. Post-actions
// other than leave are refused (kRejected): the benchmark never changes its input.
std::unique_ptr<Mailbox> make_maildir_mailbox(const std::string& dir);

}  // namespace mb
