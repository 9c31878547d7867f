// File: core/failpoint.h — named crash points for the crash tests of the real binary.
//
// `MB_FAILPOINTS="outbox.handed-over=3"` in the environment makes the process kill itself
// with SIGKILL the 3rd time it reaches failpoint("outbox.handed-over"): a crash at an exact
// instant, where a SIGKILL sent from outside lands wherever the scheduler pleases. Several
// points are separated by commas; "=N" defaults to 1. Unset (production), a failpoint costs
// one load of a flag. The points in use are listed in docs/reliability.md.
//
//   failpoint("outbox.before-record");   // after the server's answer, before its commit
#pragma once

#include <string_view>

namespace mb {

void failpoint(std::string_view name);

}  // namespace mb
