// File: cli/outbox.h — what `send`, `outbox` and `sync` share: the resolved tracking
// secret, Sender objects made on demand (with one AuthContext when a sender uses OAuth),
// and one outbox pass with its report.
#pragma once

#include <memory>
#include <string>

#include "auth/auth_context.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/outbox.h"
#include "core/store.h"

namespace mb::cli {

void add_send(CLI::App& app, Context& ctx);
void add_outbox(CLI::App& app, Context& ctx);

// The [tracking] secret, resolved; "" when none is configured. A reference that cannot be
// read (env:UNSET, file:/missing) is a kConfig error naming it: every command that uses the
// secret (send, sync, outbox flush) exits 2 rather than go on without cookies.
Result<std::string> tracking_secret(const Config& config);

// Outbox options for the CLI: errors scrubbed of every known secret.
OutboxOptions cli_outbox_options();

// Makes senders by name through make_sender; the AuthContext, opened at the first OAuth
// sender, is kept in `auth` (which must outlive the senders).
SenderFactory sender_factory(const Config& config, Store& store,
                             std::unique_ptr<AuthContext>& auth);

// One outbox pass (recover, then send what is due) with a one-line report on ctx.out and a
// line per failed attempt on ctx.err. `quiet`: say nothing when there was nothing to do.
// Returns the exit code: 2 when the tracking secret cannot be read, 1 for a store error or,
// unless `quiet`, a failed attempt.
int outbox_pass(Context& ctx, const Config& config, Store& store, bool quiet);

}  // namespace mb::cli
