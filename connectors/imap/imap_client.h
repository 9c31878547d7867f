// File: connectors/imap/imap_client.h — an IMAP4rev1 client (RFC 3501; IMAP4rev2 servers
// accepted) on the shared line layer: one function per command, an explicit state.
//
// The client does blocking request/response over a LineChannel. Each command function
// checks the state it needs, sends the command (quoting or literals as needed), reads the
// untagged responses it cares about and maps the tagged result to a Status:
//   BAD or unparsable        → kProtocol, scope kConnection (drop the connection)
//   NO                       → kRejected (scope kMailbox), kNotFound for [NONEXISTENT]
//   [UNAVAILABLE]            → kNetwork
//   NO to LOGIN/AUTHENTICATE → kAuth "IMAP server refused the login for user X: <text>"
//                              (XOAUTH2/OAUTHBEARER: the decoded error challenge, e.g.
//                              "token rejected: status 401, scope …")
//   untagged BYE             → kNetwork, scope kConnection
// Every line is traced at spdlog trace level; LOGIN passwords and AUTHENTICATE payloads
// show as <redacted>, literals only as their size.
//
//   Client c(options);
//   MB_RETURN_IF_ERROR(c.connect(std::move(stream)));
//   MB_RETURN_IF_ERROR(c.sign_in("user", password));   // or sign_in(sasl::Credentials)
//   auto box = c.select("INBOX");
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "auth/sasl.h"
#include "connectors/imap/imap_parser.h"
#include "connectors/line_client.h"
#include "core/config.h"
#include "core/line.h"
#include "core/net.h"
#include "core/status.h"

namespace mb::imap {

enum class State { kDisconnected, kGreeting, kNotAuthenticated, kAuthenticated, kSelected, kLogout };
const char* to_string(State s);

// host, tls, timeouts, label, trace and allow_plaintext_auth: connectors/line_client.h.
struct ClientOptions : LineClientOptions {
  // uid_fetch() does not download a body whose RFC822.SIZE is larger (the sink gets
  // kTooLarge); a body that turns out larger anyway is read and dropped (kTooLarge too).
  uint64_t max_message_bytes = 50ull << 20;
  size_t max_line = 4u << 20;  // a UID SEARCH answer for 500k messages fits
  // The bytes one command's answer may carry besides the message bodies it asked for
  // (untagged data, dropped literals), and the number of untagged responses in it. A UID
  // SEARCH answer for a million messages is about 8 MB.
  uint64_t max_answer_overhead = 64ull << 20;
  size_t max_untagged = 2'000'000;
};

struct SelectInfo {
  uint32_t uidvalidity = 0;
  uint64_t exists = 0;
  uint32_t uidnext = 0;  // 0 when the server did not say
  bool read_only = false;
};

// How sign_in() got in, for test-connection. kAuthenticate: another SASL mechanism, named by
// Client::mechanism().
enum class SignInMethod { kPreauth, kAuthenticatePlain, kLogin, kAuthenticate };

class Client : public LineClient {
 public:
  // An unrequested literal up to this size is kept (an odd server's folder name or tag);
  // a larger one is read and dropped.
  static constexpr uint64_t kMaxKeptUnrequested = 1024;

  explicit Client(ClientOptions options);
  ~Client();

  // Takes a connected stream (TLS already up for implicit TLS) and reads the greeting.
  Status connect(std::unique_ptr<Stream> stream);
  Status capability();
  // STARTTLS; refused (kTls) when the server does not advertise it, sent anything past its
  // reply, or greeted with PREAUTH (no moment left to encrypt) — never plaintext.
  Status starttls();
  Status login(const std::string& user, const std::string& password);
  Status authenticate_plain(const std::string& user, const std::string& password);
  // AUTHENTICATE with any SASL mechanism: the initial response on the command line when the
  // server has SASL-IR, else after its first `+`; each further `+` challenge goes to the
  // mechanism, and "*" cancels when it cannot answer. `creds` name the user in messages
  // and keep the secret out of them.
  Status authenticate(sasl::Mechanism& mechanism, const sasl::Credentials& creds);
  // The first SASL mechanism both sides support in the one order of auth/sasl.h
  // (sasl::choose_mechanism(kImap) over the AUTH= capabilities); for a password without one,
  // the LOGIN command (unless LOGINDISABLED).
  // OK at once on PREAUTH. A password needs TLS unless options.allow_plaintext_auth.
  Result<SignInMethod> sign_in(const sasl::Credentials& creds);
  Result<SignInMethod> sign_in(const std::string& user, const std::string& password);
  // The SASL mechanism the last successful AUTHENTICATE used ("" after LOGIN or PREAUTH).
  const std::string& mechanism() const { return mechanism_; }
  Result<SelectInfo> select(const std::string& folder);
  Status create(const std::string& folder);
  // UIDs matching `criteria` ("UNSEEN", "UID 5:*"), from SEARCH or ESEARCH.
  Result<std::vector<uint32_t>> uid_search(const std::string& criteria);

  // Receives each message as it arrives: its UID and body, or a kMessage-scoped error
  // (kTooLarge, no body). Returning non-OK stops the deliveries; the command still runs to
  // its end so the connection stays usable, and uid_fetch returns that status.
  using FetchSink = std::function<Status(uint32_t uid, Result<std::string> body)>;
  // UID FETCH (UID RFC822.SIZE) for all `uids`, then one UID FETCH (BODY.PEEK[]) for those
  // within max_message_bytes; the others get kTooLarge without being downloaded. UIDs the
  // server no longer has are simply not delivered. Only the bodies asked for are kept:
  // other literals in the answers are read and dropped, and the bytes of an answer besides
  // its bodies are bounded (ClientOptions::max_answer_overhead).
  Status uid_fetch(const std::vector<uint32_t>& uids, const FetchSink& sink);
  // UID FETCH (UID RFC822.SIZE): the size the server reports for each UID it still has.
  Result<std::map<uint32_t, uint64_t>> uid_sizes(const std::vector<uint32_t>& uids);
  // UID STORE <uids> +FLAGS.SILENT (<flags>).
  Status uid_store_add_flags(const std::vector<uint32_t>& uids, const std::string& flags);
  Status uid_copy(const std::vector<uint32_t>& uids, const std::string& folder);
  Status uid_move(const std::vector<uint32_t>& uids, const std::string& folder);
  Status uid_expunge(const std::vector<uint32_t>& uids);
  Status noop();

  // IDLE (RFC 2177), in three calls so that the caller picks the periods:
  // idle_start() sends IDLE and reads up to the server's "+" within the response time-out
  // (a tagged NO or BAD is the command's failure). idle_wait() then reads what the server
  // pushes until new mail (true) or `until` (false); that wait is one step ending at
  // `until`, not at the response time-out. An untagged BYE is kNetwork (scope kConnection),
  // the thread's Cancel kCancelled; both close the connection. idle_done() sends DONE and
  // reads the tagged answer within the response time-out (nothing when the server already
  // ended the IDLE). "New mail" is the flag take_new_mail() reads.
  Status idle_start();
  Result<bool> idle_wait(std::chrono::steady_clock::time_point until);
  Status idle_done();
  bool idling() const { return idling_; }
  // True when the folder grew (EXISTS or RECENT above what was known: folder_news() in
  // imap_parser.h) in any answer since the last call or since SELECT; clears the flag.
  bool take_new_mail() {
    bool b = new_mail_;
    new_mail_ = false;
    return b;
  }

  Status logout();
  // Drops the connection without LOGOUT.
  void close();

  State state() const { return state_; }
  bool has_capability(const std::string& name) const;  // case-insensitive
  const std::set<std::string>& capabilities() const { return caps_; }
  uint64_t exists() const { return counts_.exists; }

 private:
  friend struct ClientTestPeer;  // tests/unit: states no call sequence reaches today
  struct Part;
  class SaslLink;
  using UntaggedHandler = std::function<Status(ImapResponse&)>;

  Result<ImapResponse> run(const std::vector<Part>& parts, const UntaggedHandler& on_untagged);
  std::string begin_command(const std::string& name);
  Status send_parts(const std::string& tag, const std::vector<Part>& parts,
                    const UntaggedHandler& on_untagged, std::optional<ImapResponse>& early);
  Result<ImapResponse> read_until_tagged(const std::string& tag, const UntaggedHandler& on_untagged);
  // The next continuation or tagged response; untagged ones are noted on the way.
  Result<ImapResponse> read_until_continuation(const std::string& tag);
  Result<ImapResponse> read_response();
  Status read_literal(uint64_t size);
  Status check_answer_bounds(uint64_t coming);
  Status note_untagged(ImapResponse& r);
  void note_capabilities(const ImapResponse& r);
  Status require(std::initializer_list<State> states, const char* command) const;
  Status simple(const std::vector<Part>& parts, const std::string& what);
  Status fail(Status s);
  Status auth_failure(const ImapResponse& r, const std::string& user,
                      const std::string& password) const;
  std::vector<std::string> sasl_mechanisms() const;
  Status plaintext_refused(const std::string& what) const;
  Status after_sign_in(const ImapResponse& ok);
  Status deliver_fetch(ImapResponse& r, const FetchSink& sink, Status& stop);
  std::vector<Part> astring_part(const std::string& s, bool secret = false) const;

  ClientOptions options_;
  ResponseParser parser_;
  State state_ = State::kDisconnected;
  std::set<std::string> caps_;  // upper-cased
  FolderCounts counts_;
  bool new_mail_ = false;
  bool idling_ = false;
  std::string idle_tag_;
  uint32_t next_tag_ = 1;
  // What happened to the BODY[] literal of the response being read.
  enum class BodyFate { kNone, kKept, kTooLarge, kDropped };
  BodyFate body_fate_ = BodyFate::kNone;
  uint64_t body_size_ = 0;       // that literal's size
  uint64_t bodies_wanted_ = 0;   // BODY[] literals the running UID FETCH may still keep
  uint64_t body_bytes_ = 0;      // bytes of bodies kept in the running command's answer
  size_t untagged_ = 0;          // untagged responses in the running command's answer
  std::string command_;          // the running command's name, for messages
  std::string mechanism_;
};

// The Status for a tagged NO/BAD to `what` ("SELECT INBOX"): see the table above.
Status command_failure(const ImapResponse& r, const std::string& what);

}  // namespace mb::imap
