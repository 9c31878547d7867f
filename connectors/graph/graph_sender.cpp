// File: connectors/graph/graph_sender.cpp — the Graph Sender: sendMail with the MIME of our
// composed message (base64, Content-Type text/plain) when it fits one request and a Sent
// Items copy is wanted; otherwise JSON: sendMail with saveToSentItems, or — for attachments
// of 3 MB and more — a draft, upload sessions (PUT ranges to the pre-authenticated
// uploadUrl, which gets no Authorization header) and /send. Graph answers 202 Accepted:
// queued, not delivered, and recorded so (SendResult::queued_only).
//
// The request that sends (sendMail, or the draft's /send) is never repeated after it was
// written unless Graph refused it first (429, 503): once it is on the connection the outbox
// hears of the hand-over (OutgoingMail::on_handed_over), and a 500/502/504, a time-out or a
// dropped connection then leaves the message in doubt, for [outbox] in_doubt to settle.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "auth/base64.h"
#include "auth/oauth.h"
#include "auth/token_cache.h"
#include "connectors/graph/graph.h"
#include "connectors/graph/graph_client.h"
#include "core/ascii.h"
#include "core/message.h"

namespace mb {
namespace {

using graph::GraphCall;
using graph::GraphClient;
using graph::Permission;
using graph::segment;
using json = nlohmann::json;

// Graph's limits: a request body of at most 4 MB; attachments from 3 MB need an upload session.
constexpr size_t kMaxRequest = 4 * 1000 * 1000;
constexpr size_t kLargeAttachment = 3 * 1024 * 1024;
constexpr size_t kInlineBudget = 2 * 1024 * 1024;  // decoded bytes inline in one JSON request

json address_json(const std::string& email, const std::string& name) {
  json a = {{"address", email}};
  if (!name.empty()) a["name"] = name;
  return json{{"emailAddress", a}};
}

bool contains_address(const std::vector<Address>& list, const std::string& email) {
  const std::string e = ascii_lower(email);
  return std::any_of(list.begin(), list.end(),
                     [&](const Address& a) { return ascii_lower(a.email) == e; });
}

// Envelope recipients that no To or Cc header names: Bcc, which the composer leaves out.
std::vector<std::string> blind_recipients(const ParsedMessage& m, const Envelope& env) {
  std::vector<std::string> out;
  for (const auto& r : env.recipients) {
    if (!contains_address(m.to, r) && !contains_address(m.cc, r)) out.push_back(r);
  }
  return out;
}

json attachment_json(const Attachment& a) {
  json j = {{"@odata.type", "#microsoft.graph.fileAttachment"},
            {"name", a.filename},
            {"contentType", a.content_type.empty() ? "application/octet-stream" : a.content_type},
            {"contentBytes", base64_encode(a.data)},
            {"isInline", a.inline_part}};
  if (!a.content_id.empty()) j["contentId"] = a.content_id;
  return j;
}

// The message resource of our composed mail. In-Reply-To and References cannot be set as
// internetMessageHeaders (only X- headers may), so they go in as the MAPI properties
// PidTagInReplyToId (0x1042) and PidTagInternetReferences (0x1039), keeping replies threaded.
json message_json(const ParsedMessage& m, const Envelope& env) {
  json msg = {{"subject", m.subject}};
  msg["body"] = m.html.empty() ? json{{"contentType", "Text"}, {"content", m.text}}
                               : json{{"contentType", "HTML"}, {"content", m.html}};
  auto list = [](const std::vector<Address>& addrs) {
    json arr = json::array();
    for (const auto& a : addrs) arr.push_back(address_json(a.email, a.name));
    return arr;
  };
  msg["toRecipients"] = list(m.to);
  if (!m.cc.empty()) msg["ccRecipients"] = list(m.cc);
  json bcc = json::array();
  for (const auto& r : blind_recipients(m, env)) bcc.push_back(address_json(r, ""));
  if (!bcc.empty()) msg["bccRecipients"] = bcc;
  if (!m.from.email.empty()) msg["from"] = address_json(m.from.email, m.from.name);
  if (!m.reply_to.empty()) msg["replyTo"] = json::array({address_json(m.reply_to, "")});
  if (!m.message_id.empty()) msg["internetMessageId"] = "<" + m.message_id + ">";
  json headers = json::array();
  for (const auto& [name, value] : m.headers) {
    if (ascii_lower(name).rfind("x-", 0) == 0) {
      headers.push_back({{"name", name}, {"value", value}});
    }
  }
  if (!headers.empty()) msg["internetMessageHeaders"] = headers;
  json props = json::array();
  if (!m.in_reply_to.empty()) {
    props.push_back({{"id", "String 0x1042"}, {"value", "<" + m.in_reply_to + ">"}});
  }
  if (!m.references.empty()) {
    std::string refs;
    for (const auto& r : m.references) refs += (refs.empty() ? "<" : " <") + r + ">";
    props.push_back({{"id", "String 0x1039"}, {"value", refs}});
  }
  if (!props.empty()) msg["singleValueExtendedProperties"] = props;
  return msg;
}

// Where each attachment goes: inline in the first request, its own POST, or an upload session.
struct AttachmentPlan {
  std::vector<const Attachment*> inline_parts;
  std::vector<const Attachment*> separate;
  std::vector<const Attachment*> large;
};

AttachmentPlan plan_attachments(const ParsedMessage& m) {
  AttachmentPlan plan;
  size_t inline_bytes = 0;
  for (const auto& a : m.attachments) {
    if (a.data.size() >= kLargeAttachment) {
      plan.large.push_back(&a);
    } else if (inline_bytes + a.data.size() <= kInlineBudget) {
      inline_bytes += a.data.size();
      plan.inline_parts.push_back(&a);
    } else {
      plan.separate.push_back(&a);
    }
  }
  return plan;
}

// OutgoingMail::on_handed_over for the moment the request that sends is written (once,
// though a 429 or 503 sends it again): from then on Graph may send the mail whatever
// becomes of its answer. Each recipient stands as accepted until Graph answers.
std::function<void()> handover(const OutgoingMail& mail) {
  if (!mail.on_handed_over) return {};
  auto done = std::make_shared<std::atomic<bool>>(false);
  return [&mail, done] {
    if (done->exchange(true)) return;
    SendResult so_far;
    so_far.queued_only = true;
    for (const auto& rcpt : mail.envelope.recipients) {
      so_far.recipients.push_back(
          {rcpt, true, false, "request written to Microsoft Graph; its answer not read yet"});
    }
    mail.on_handed_over(so_far);
  };
}

class GraphSender final : public Sender {
 public:
  GraphSender(SenderConfig cfg, std::string service, SignIn sign_in,
              std::unique_ptr<HttpClient> http, GraphTuning tuning)
      : cfg_(std::move(cfg)),
        chunk_(std::clamp<size_t>(tuning.upload_chunk, 1, 4 * 1024 * 1024)),
        client_(std::move(service), cfg_.user, "sender " + cfg_.name, std::move(sign_in),
                std::move(http), std::move(tuning), 4) {}

  Result<SendResult> send(const OutgoingMail& mail) override;
  ConnectionReport test_connection() override;
  void close() override {}

 private:
  // A POST that may be repeated only when `repeatable` (graph_client.h).
  Result<HttpResponse> post(const std::string& target, std::string body, std::string type,
                            const std::string& what, bool repeatable,
                            std::function<void()> on_written = {});
  Status failed(const HttpResponse& r, const std::string& what) const;
  Status send_failed(const HttpResponse& r, const std::string& what) const;
  SendResult queued(const OutgoingMail& mail, const HttpResponse& r) const;
  Result<SendResult> send_mime(const OutgoingMail& mail, const ParsedMessage& m);
  Result<SendResult> send_draft(const OutgoingMail& mail, json msg, const AttachmentPlan& plan);
  Status fill_draft(const std::string& id, const AttachmentPlan& plan);
  Status upload(const std::string& draft, const Attachment& a);

  SenderConfig cfg_;
  size_t chunk_;
  GraphClient client_;
};

Result<HttpResponse> GraphSender::post(const std::string& target, std::string body,
                                       std::string type, const std::string& what,
                                       bool repeatable, std::function<void()> on_written) {
  return client_.call({.method = "POST",
                       .target = target,
                       .body = std::move(body),
                       .content_type = std::move(type),
                       .permission = Permission::kSend,
                       .what = what,
                       .repeatable = repeatable,
                       .on_written = std::move(on_written)});
}

Status GraphSender::failed(const HttpResponse& r, const std::string& what) const {
  Status s = client_.error_status(r, what);
  // 404: no such mailbox (or not Exchange Online): a configuration problem, not the message's.
  if (r.status == 404) return Status(ErrorKind::kConfig, s.message());
  return s;
}

// The answer to the request that sends, when not 2xx. A 500, 502 or 504 may come after Graph
// took the mail: kNetwork, which after the hand-over the outbox holds in doubt.
Status GraphSender::send_failed(const HttpResponse& r, const std::string& what) const {
  Status s = failed(r, what);
  if (r.status < 500) return s;
  return Status(ErrorKind::kNetwork,
                s.message() + "; Microsoft Graph may have sent the message before failing",
                ErrorScope::kConnection);
}

SendResult GraphSender::queued(const OutgoingMail& mail, const HttpResponse& r) const {
  SendResult out;
  for (const auto& rcpt : mail.envelope.recipients) {
    out.recipients.push_back({rcpt, true, false,
                              fmt::format("{} Accepted: queued by Microsoft Graph", r.status)});
  }
  out.server_id = r.header("request-id").value_or(r.header("client-request-id").value_or(""));
  out.queued_only = true;  // Graph answers before delivery; bounces arrive later as mail
  spdlog::info("{}: message {} queued by Graph (request-id {})", client_.who(), mail.id,
               out.server_id);
  return out;
}

Result<SendResult> GraphSender::send_mime(const OutgoingMail& mail, const ParsedMessage& m) {
  std::string raw;
  std::vector<std::string> bcc = blind_recipients(m, mail.envelope);
  if (!bcc.empty()) {
    // Exchange takes the recipients of a MIME submission from its headers.
    std::string line = "Bcc: ";
    for (size_t i = 0; i < bcc.size(); ++i) line += (i ? ", " : "") + bcc[i];
    raw = line + "\r\n";
  }
  raw += mail.raw;
  auto r = post(client_.user_path() + "/sendMail", base64_encode(raw), "text/plain",
                "sendMail (MIME)", false, handover(mail));
  if (!r.ok()) return r.status();
  if (r->status < 200 || r->status >= 300) return send_failed(*r, "sendMail (MIME)");
  return queued(mail, *r);
}

Status GraphSender::upload(const std::string& draft, const Attachment& a) {
  const std::string what = "upload attachment " + a.filename;
  json item = {{"attachmentType", "file"}, {"name", a.filename}, {"size", a.data.size()},
               {"isInline", a.inline_part}};
  if (!a.content_type.empty()) item["contentType"] = a.content_type;
  if (!a.content_id.empty()) item["contentId"] = a.content_id;
  auto r = post(client_.user_path() + "/messages/" + segment(draft) +
                    "/attachments/createUploadSession",
                json{{"AttachmentItem", item}}.dump(), "application/json",
                "createUploadSession for " + a.filename, true);
  if (!r.ok()) return r.status();
  if (r->status != 201 && r->status != 200) return failed(*r, "createUploadSession");
  json session = json::parse(r->body, nullptr, false);
  std::string url = session.is_object() ? session.value("uploadUrl", "") : "";
  if (url.empty()) {
    return Status(ErrorKind::kProtocol, client_.who() + ": upload session without uploadUrl");
  }
  const size_t total = a.data.size();
  for (size_t off = 0; off < total;) {
    const size_t len = std::min(chunk_, total - off);
    // The URL carries its own authorization: a bearer token must not travel with it.
    auto put = client_.call(
        {.method = "PUT",
         .target = url,
         .body = a.data.substr(off, len),
         .content_type = "application/octet-stream",
         .headers = {{"Content-Range", fmt::format("bytes {}-{}/{}", off, off + len - 1, total)}},
         .authorize = false,
         .permission = Permission::kSend,
         .what = what});
    if (!put.ok()) return put.status();
    if (put->status == 201) return Status::Ok();
    if (put->status != 200) return failed(*put, what);
    size_t next = off + len;
    json progress = json::parse(put->body, nullptr, false);
    if (progress.is_object() && progress.contains("nextExpectedRanges") &&
        progress["nextExpectedRanges"].is_array() && !progress["nextExpectedRanges"].empty() &&
        progress["nextExpectedRanges"][0].is_string()) {
      const std::string range = progress["nextExpectedRanges"][0].get<std::string>();
      size_t want = std::strtoull(range.c_str(), nullptr, 10);
      if (want > off && want <= total) next = want;
    }
    off = next;
  }
  return Status::Ok();
}

Status GraphSender::fill_draft(const std::string& id, const AttachmentPlan& plan) {
  for (const Attachment* a : plan.separate) {
    auto r = post(client_.user_path() + "/messages/" + segment(id) + "/attachments",
                  attachment_json(*a).dump(), "application/json", "add attachment " + a->filename,
                  false);
    if (!r.ok()) return r.status();
    if (r->status != 201 && r->status != 200) return failed(*r, "add attachment");
  }
  for (const Attachment* a : plan.large) MB_RETURN_IF_ERROR(upload(id, *a));
  return Status::Ok();
}

Result<SendResult> GraphSender::send_draft(const OutgoingMail& mail, json msg,
                                           const AttachmentPlan& plan) {
  if (!cfg_.save_to_sent_items) {
    spdlog::warn("{}: message {} has attachments too large for one request; it is sent as a "
                 "draft, and Graph keeps a copy in Sent Items despite save_to_sent_items = false",
                 client_.who(), mail.id);
  }
  auto created = post(client_.user_path() + "/messages", msg.dump(), "application/json",
                      "create draft", false);
  if (!created.ok()) return created.status();
  if (created->status != 201 && created->status != 200) return failed(*created, "create draft");
  json draft = json::parse(created->body, nullptr, false);
  std::string id = draft.is_object() ? draft.value("id", "") : "";
  if (id.empty()) return Status(ErrorKind::kProtocol, client_.who() + ": draft without id");
  Status s = fill_draft(id, plan);
  std::optional<HttpResponse> sent;
  auto written = std::make_shared<std::atomic<bool>>(false);
  if (s.ok()) {
    auto on_written = [written, hand = handover(mail)] {
      written->store(true);
      if (hand) hand();
    };
    auto r = post(client_.user_path() + "/messages/" + segment(id) + "/send", "", "",
                  "send draft", false, on_written);
    if (!r.ok()) s = r.status();
    else if (r->status < 200 || r->status >= 300) s = send_failed(*r, "send draft");
    else sent = std::move(*r);
  }
  if (!s.ok() && *written && !is_server_answer(s)) {
    // Graph may have sent it, and a sent draft keeps its (immutable) id in Sent Items.
    spdlog::warn("{}: message {}: draft {} kept: Graph may have sent it", client_.who(),
                 mail.id, id);
    return s;
  }
  if (!s.ok()) {
    // A retry makes a new draft; this one must not linger in Drafts.
    client_.call({.method = "DELETE",
                  .target = client_.user_path() + "/messages/" + segment(id),
                  .what = "delete unsent draft"}).status().ignore();
    return s;
  }
  return queued(mail, *sent);
}

Result<SendResult> GraphSender::send(const OutgoingMail& mail) {
  if (mail.envelope.recipients.empty()) {
    return Status(ErrorKind::kInvalidInput, client_.who() + ": message " + mail.id +
                                                " has no recipients");
  }
  auto parsed = parse_message(mail.raw);
  if (!parsed.ok()) return parsed.status().prefixed(client_.who() + ": message " + mail.id);
  AttachmentPlan plan = plan_attachments(*parsed);
  const size_t mime_request = (mail.raw.size() + 2) / 3 * 4;
  if (cfg_.save_to_sent_items && plan.large.empty() && mime_request <= kMaxRequest) {
    return send_mime(mail, *parsed);
  }
  json msg = message_json(*parsed, mail.envelope);
  json inline_parts = json::array();
  for (const Attachment* a : plan.inline_parts) inline_parts.push_back(attachment_json(*a));
  if (!inline_parts.empty()) msg["attachments"] = inline_parts;
  if (!plan.large.empty() || !plan.separate.empty()) return send_draft(mail, msg, plan);
  json body = {{"message", msg}, {"saveToSentItems", cfg_.save_to_sent_items}};
  auto r = post(client_.user_path() + "/sendMail", body.dump(), "application/json",
                "sendMail (JSON)", false, handover(mail));
  if (!r.ok()) return r.status();
  if (r->status < 200 || r->status >= 300) return send_failed(*r, "sendMail (JSON)");
  return queued(mail, *r);
}

// Sending needs Mail.Send alone, which reads nothing: no Graph call shows the mailbox without
// a permission mailbridge does not need (GET /users/{id} needs User.Read.All). So the token
// is obtained and its roles (app-only) or scopes (delegated) must grant Mail.Send; the
// mailbox itself is proven by the first message (a 404 names it).
ConnectionReport GraphSender::test_connection() {
  ConnectionReport rep;
  auto step = [&](const char* name, const Status& s, const std::string& detail) {
    rep.steps.push_back(StepReport{name, s.ok(), s.ok() ? detail : s.message()});
    if (!s.ok() && rep.status.ok()) rep.status = s;
    return s.ok();
  };
  const SignIn& sign_in = client_.sign_in();
  std::optional<TokenClaims> claims;
  Status token = sign_in.oauth()
                     ? sign_in.with_token([&](const std::string& t) {
                         claims = decode_token_claims(t);
                         return Status::Ok();
                       })
                     : Status(ErrorKind::kConfig, "Microsoft Graph needs auth = \"oauth2\"");
  std::string detail = sign_in.describe ? sign_in.describe() : "access token obtained";
  if (!claims && token.ok()) detail += "; an opaque token: its permissions are not checked";
  if (!step("token", token, detail) || !claims) return rep;
  const bool app_only = !claims->roles.empty() || claims->scp.empty();
  const auto& granted = app_only ? claims->roles : claims->scp;
  std::string have;
  for (const auto& g : granted) have += (have.empty() ? "" : " ") + g;
  if (have.empty()) have = "none";
  const bool can_send = std::find(granted.begin(), granted.end(), "Mail.Send") != granted.end();
  const char* kind = app_only ? "application permission" : "delegated permission";
  Status permission =
      can_send ? Status::Ok()
               : Status(ErrorKind::kAuth,
                        fmt::format("the token lacks Mail.Send ({} {}): add the Microsoft Graph "
                                    "{} Mail.Send to app {} and grant admin consent",
                                    app_only ? "roles" : "scp", have, kind,
                                    claims->appid.empty() ? "(the app)" : claims->appid),
                        ErrorScope::kMailbox);
  step("permission", permission,
       fmt::format("Mail.Send granted ({} {}); mailbox {} is checked by the first message",
                   app_only ? "roles" : "scp", have, cfg_.user));
  return rep;
}

}  // namespace

std::unique_ptr<Sender> make_graph_sender(const SenderConfig& config, std::string service,
                                          SignIn sign_in, GraphHttpFactory http,
                                          GraphTuning tuning) {
  return std::make_unique<GraphSender>(config, std::move(service), std::move(sign_in),
                                       graph::make_http(http, config.tls, config.timeouts),
                                       std::move(tuning));
}

std::unique_ptr<Sender> make_graph_sender(const SenderConfig& config, std::string service,
                                          SignIn sign_in, GraphHttpFactory http) {
  return make_graph_sender(config, std::move(service), std::move(sign_in), std::move(http),
                           GraphTuning{});
}

}  // namespace mb
