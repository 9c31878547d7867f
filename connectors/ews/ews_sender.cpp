// File: connectors/ews/ews_sender.cpp — the EWS Sender: CreateItem with our MIME (ews_sender.h).
#include "connectors/ews/ews_sender.h"

#include <atomic>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "auth/base64.h"
#include "connectors/ews/ews_autodiscover.h"
#include "core/ascii.h"

namespace mb::ews {
namespace {

// The header section of `raw` (up to the empty line), with folded lines joined.
std::vector<std::pair<std::string, std::string>> header_fields(std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    if (eol == std::string_view::npos) eol = raw.size();
    std::string_view line = raw.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) {
      out.back().second += " " + std::string(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return out;
}

// Whether `address` appears in `field` as an addr-spec (bounded by non-address characters).
bool names(const std::string& field, const std::string& address) {
  const std::string f = ascii_lower(field);
  const std::string a = ascii_lower(address);
  auto is_addr_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_' ||
           c == '+' || c == '@' || c == '\'';
  };
  for (size_t at = f.find(a); at != std::string::npos; at = f.find(a, at + 1)) {
    bool left = at == 0 || !is_addr_char(f[at - 1]);
    bool right = at + a.size() == f.size() || !is_addr_char(f[at + a.size()]);
    if (left && right) return true;
  }
  return false;
}

// OutgoingMail::on_handed_over for the moment CreateItem is on the wire (once, though an
// ErrorServerBusy sends it again): each recipient stands as accepted until Exchange answers.
std::function<void()> handover(const OutgoingMail& mail, std::shared_ptr<std::atomic<bool>> done) {
  return [&mail, done] {
    if (done->exchange(true) || !mail.on_handed_over) return;
    SendResult so_far;
    so_far.queued_only = true;
    for (const auto& rcpt : mail.envelope.recipients) {
      so_far.recipients.push_back(
          {rcpt, true, false, "CreateItem written to Exchange; its answer not read yet"});
    }
    mail.on_handed_over(so_far);
  };
}

class EwsSender final : public Sender {
 public:
  EwsSender(SenderOptions options, SignIn sign_in, HttpFactory http)
      : options_(std::move(options)), sign_in_(std::move(sign_in)), http_(std::move(http)) {}

  Result<SendResult> send(const OutgoingMail& mail) override;
  ConnectionReport test_connection() override;
  void close() override {}

 private:
  // The client, after autodiscover when no endpoint is configured; `discovery` gets its steps.
  Result<Client*> client(Discovery* discovery = nullptr);
  std::string who() const { return "EWS sender " + options_.client.mailbox; }

  SenderOptions options_;
  SignIn sign_in_;
  HttpFactory http_;
  std::unique_ptr<Client> client_;
};

Result<Client*> EwsSender::client(Discovery* discovery) {
  if (client_) return client_.get();
  ClientOptions c = options_.client;
  if (c.endpoint.empty()) {
    AutodiscoverOptions a = autodiscover_options(c);
    a.prefer_internal = options_.prefer_internal_url;
    a.connect_to = options_.autodiscover_connect_to;
    Discovery d = autodiscover(a, sign_in_, http_);
    if (discovery != nullptr) *discovery = d;
    if (!d.status.ok()) return d.status.prefixed(who());
    spdlog::info("{}: autodiscover found the EWS URL {}", who(), d.ews_url);
    c.endpoint = d.ews_url;
  }
  client_ = std::make_unique<Client>(std::move(c), sign_in_, http_);
  return client_.get();
}

Result<SendResult> EwsSender::send(const OutgoingMail& mail) {
  const std::string what = who() + ": message" + (mail.id.empty() ? "" : " " + mail.id);
  if (mail.envelope.recipients.empty()) {
    return Status(ErrorKind::kInvalidInput, what + " has no recipients", ErrorScope::kMessage);
  }
  auto c = client();
  if (!c.ok()) return c.status();
  std::string bcc;
  for (const auto& r : blind_recipients(mail.raw, mail.envelope.recipients)) {
    bcc += (bcc.empty() ? "Bcc: " : ", ") + r;
  }
  if (!bcc.empty()) bcc += "\r\n";
  std::string folder = options_.save_to_sent_items ? (*c)->folder("sentitems") : "";
  // The one copy of the request: the envelope around the CreateItem, MIME encoded in place.
  const std::string shell = envelope((*c)->envelope_options(), "\x01");
  const size_t hole = shell.find('\x01');
  std::string xml;
  xml.reserve(shell.size() + folder.size() + (bcc.size() + mail.raw.size() + 2) / 3 * 4 + 512);
  xml.append(shell, 0, hole);
  append_create_item(xml, mail.raw, bcc, folder);
  xml.append(shell, hole + 1);
  auto written = std::make_shared<std::atomic<bool>>(false);
  auto r = (*c)->call_envelope("CreateItem", std::move(xml), /*repeatable=*/false,
                               handover(mail, written));
  Status s = r.ok() ? (r->messages.size() == 1
                           ? message_status(r->messages[0], what)
                           : Status(ErrorKind::kProtocol, what + ": CreateItem: one answer expected",
                                    ErrorScope::kConnection))
                    : r.status().prefixed(what);
  if (!s.ok()) {
    if (*written && !is_server_answer(s)) {
      return Status(s.kind(), s.message() + "; the request reached Exchange, which may have sent "
                                            "the message before its answer was lost",
                    ErrorScope::kConnection);
    }
    return s;
  }
  SendResult out;
  for (const auto& rcpt : mail.envelope.recipients) {
    out.recipients.push_back({rcpt, true, false,
                              options_.save_to_sent_items
                                  ? "CreateItem SendAndSaveCopy: NoError (submitted by Exchange)"
                                  : "CreateItem SendOnly: NoError (submitted by Exchange)"});
  }
  out.queued_only = true;  // submitted to Exchange's transport, not yet delivered
  spdlog::info("{}: submitted to Exchange", what);
  return out;
}

// Autodiscover (when no endpoint is set), then GetFolder of Sent Items: the sign-in, the
// access to the mailbox and the folder the copies go to — no message is sent.
ConnectionReport EwsSender::test_connection() {
  ConnectionReport report;
  Discovery d;
  const bool discovers = options_.client.endpoint.empty() && !client_;
  auto c = client(&d);
  if (discovers) {
    for (const auto& step : d.steps) {
      report.steps.push_back({"autodiscover", step.ok, step.kind + " " + step.url + ": " + step.outcome});
    }
  }
  if (!c.ok()) {
    report.status = c.status();
    return report;
  }
  std::string body = "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
                     "<m:FolderIds>" + (*c)->folder("sentitems") + "</m:FolderIds></m:GetFolder>";
  auto r = (*c)->call("GetFolder", body, true);
  Status s = r.ok() ? (r->messages.size() == 1 ? message_status(r->messages[0], who() + ": GetFolder sentitems")
                                              : Status(ErrorKind::kProtocol, who() + ": GetFolder: one answer expected"))
                    : r.status();
  bool signed_in = s.ok() || (s.kind() != ErrorKind::kAuth && s.kind() != ErrorKind::kNetwork &&
                              s.kind() != ErrorKind::kTls && s.kind() != ErrorKind::kCancelled);
  std::string version = r.ok() && !r->server_version.empty() ? ", Exchange " + r->server_version : "";
  report.steps.push_back({"sign-in", signed_in,
                          signed_in ? (*c)->who() + " at " + (*c)->options().endpoint + version
                                    : s.message()});
  if (signed_in) {
    report.steps.push_back({"sent-items", s.ok(),
                            s.ok() ? (options_.save_to_sent_items ? "Sent Items reachable; copies are kept there"
                                                                  : "Sent Items reachable; no copies kept (SendOnly)")
                                   : s.message()});
  }
  report.status = s;
  return report;
}

}  // namespace

std::vector<std::string> blind_recipients(std::string_view raw,
                                          const std::vector<std::string>& recipients) {
  std::string to_cc;
  for (const auto& [name, value] : header_fields(raw)) {
    if (ascii_iequals(name, "To") || ascii_iequals(name, "Cc")) to_cc += value + ",";
  }
  std::vector<std::string> out;
  for (const auto& r : recipients) {
    if (!names(to_cc, r)) out.push_back(r);
  }
  return out;
}

void append_create_item(std::string& out, std::string_view raw, std::string_view bcc_line,
                        std::string_view saved_folder) {
  out += saved_folder.empty() ? "<m:CreateItem MessageDisposition=\"SendOnly\">"
                              : "<m:CreateItem MessageDisposition=\"SendAndSaveCopy\"><m:SavedItemFolderId>";
  if (!saved_folder.empty()) out.append(saved_folder).append("</m:SavedItemFolderId>");
  out += "<m:Items><t:Message><t:MimeContent CharacterSet=\"UTF-8\">";
  // base64 of bcc_line + raw without joining them: the first piece is filled up to a
  // multiple of three bytes from raw, so the two encodings concatenate.
  const size_t fill = std::min(raw.size(), (3 - bcc_line.size() % 3) % 3);
  std::string head(bcc_line);
  head.append(raw.substr(0, fill));
  base64_append(head, out);
  base64_append(raw.substr(fill), out);
  out += "</t:MimeContent></t:Message></m:Items></m:CreateItem>";
}

std::unique_ptr<Sender> make_ews_sender(SenderOptions options, SignIn sign_in, HttpFactory http) {
  return std::make_unique<EwsSender>(std::move(options), std::move(sign_in), std::move(http));
}

}  // namespace mb::ews
