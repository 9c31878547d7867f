// File: core/internal/resolver.h — the name lookup under core/net's connect_tcp and
// resolve_host, with a deadline. Not API: only core/net.cpp and its tests use it.
//
// getaddrinfo() has no time-out of its own, and a hung resolver (a DNS server that never
// answers, a stuck NSS module) would block the mailbox's thread for ever. The lookup runs on
// a detached helper thread and the caller waits for it until the deadline (the mailbox's
// `connect` time-out); past it the caller gets a network error and the helper finishes (and
// frees its answer) whenever the resolver returns. At most kMaxPendingLookups helpers may be
// unfinished at once: a resolver that hangs for everyone costs a bounded number of threads,
// and a lookup past the cap waits for a free helper within its deadline, then fails saying so.
//
// Why not getaddrinfo_a (glibc): it runs the same blocking lookup on glibc's own helper
// threads, whose number it does not bound, gai_cancel cannot stop a lookup in progress, and
// it cannot be replaced by a fake in tests; a thread of our own is as cheap and testable.
#pragma once

#include <netdb.h>

#include <chrono>
#include <cstddef>
#include <functional>

namespace mb::internal {

// getaddrinfo()'s signature; the list returned must be one freeaddrinfo() can free.
using Resolver = std::function<int(const char* host, const char* service, const addrinfo* hints,
                                   addrinfo** out)>;

inline constexpr size_t kMaxPendingLookups = 8;

// Replaces the resolver of later lookups (an empty function: getaddrinfo again). For tests.
void set_resolver(Resolver r);

// Lookups whose helper thread has not finished (answered late, or still hung).
size_t pending_lookups();

// Waits until no helper thread is left or `timeout` passes; true when none is left.
bool wait_for_no_pending_lookups(std::chrono::milliseconds timeout);

}  // namespace mb::internal
