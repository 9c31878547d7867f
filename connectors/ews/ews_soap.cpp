// File: connectors/ews/ews_soap.cpp — EWS envelopes and answers (ews_soap.h).
#include "connectors/ews/ews_soap.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace mb::ews {
namespace {

constexpr size_t kQuoted = 120;  // bytes of a malformed body quoted in an error

Status protocol_error(const std::string& why, std::string_view body) {
  std::string start;
  for (unsigned char c : body.substr(0, kQuoted)) {
    if (c < 0x20 || c == 0x7f) {
      start += fmt::format("\\x{:02x}", c);
    } else {
      start += static_cast<char>(c);
    }
  }
  return Status(ErrorKind::kProtocol,
                "EWS answer " + why + (body.empty() ? " (empty body)" : " (starts: " + start + ")"),
                ErrorScope::kConnection);
}

std::string trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])) != 0) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])) != 0) --e;
  return std::string(s.substr(b, e - b));
}

// The namespace URI a node's prefix is bound to, looked up through its ancestors.
std::string_view namespace_of(pugi::xml_node node) {
  std::string_view name = node.name();
  size_t colon = name.find(':');
  std::string attr = colon == std::string_view::npos
                         ? std::string("xmlns")
                         : "xmlns:" + std::string(name.substr(0, colon));
  for (pugi::xml_node n = node; n; n = n.parent()) {
    pugi::xml_attribute a = n.attribute(attr.c_str());
    if (a) return a.value();
  }
  return {};
}

// The same URI, also when a documentation example wrote it with https://.
bool same_namespace(std::string_view got, std::string_view want) {
  if (got == want) return true;
  return got.rfind("https://", 0) == 0 && want.rfind("http://", 0) == 0 &&
         got.substr(8) == want.substr(7);
}

bool is(pugi::xml_node node, std::string_view ns, std::string_view name) {
  return node && local_name(node) == name && same_namespace(namespace_of(node), ns);
}

std::optional<std::chrono::milliseconds> back_off_in(pugi::xml_node message_xml) {
  for (pugi::xml_node v : message_xml.children()) {
    if (local_name(v) != "Value" || std::string_view(v.attribute("Name").value()) != "BackOffMilliseconds") {
      continue;
    }
    std::string text = trim(v.text().get());
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec == std::errc() && end == text.data() + text.size() && ms >= 0) {
      return std::chrono::milliseconds(ms);
    }
  }
  return std::nullopt;
}

Fault read_fault(int http_status, pugi::xml_node fault) {
  Fault f;
  f.http_status = http_status;
  pugi::xml_node detail = child(fault, "detail");
  f.code = child_text(detail, "ResponseCode");
  if (f.code.empty()) {
    std::string code = child_text(fault, "faultcode");
    size_t colon = code.find(':');
    f.code = colon == std::string::npos ? code : code.substr(colon + 1);
  }
  f.text = child_text(detail, "Message");
  if (f.text.empty()) f.text = child_text(fault, "faultstring");
  f.back_off = back_off_in(child(detail, "MessageXml"));
  return f;
}

ResponseMessage read_message(pugi::xml_node node) {
  ResponseMessage m;
  m.node = node;
  m.response_class = node.attribute("ResponseClass").value();
  m.code = child_text(node, "ResponseCode");
  m.text = child_text(node, "MessageText");
  m.back_off = back_off_in(child(node, "MessageXml"));
  return m;
}

std::string version_of(pugi::xml_node header) {
  pugi::xml_node v = child(header, "ServerVersionInfo");
  if (!v) return "";
  return fmt::format("{}.{}.{}.{}", v.attribute("MajorVersion").value(),
                     v.attribute("MinorVersion").value(), v.attribute("MajorBuildNumber").value(),
                     v.attribute("MinorBuildNumber").value());
}

}  // namespace

std::string_view local_name(pugi::xml_node node) {
  std::string_view name = node.name();
  size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node child(pugi::xml_node parent, std::string_view name) {
  for (pugi::xml_node c : parent.children()) {
    if (c.type() == pugi::node_element && local_name(c) == name) return c;
  }
  return {};
}

std::string child_text(pugi::xml_node parent, std::string_view name) {
  return trim(child(parent, name).text().get());
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string envelope(const EnvelopeOptions& options, std::string_view body) {
  std::string header = "<t:RequestServerVersion Version=\"" + xml_escape(options.version) + "\"/>";
  if (!options.impersonate.empty()) {
    header += "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>" +
              xml_escape(options.impersonate) +
              "</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>";
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{}\" "
      "xmlns:t=\"{}\" xmlns:m=\"{}\"><soap:Header>{}</soap:Header><soap:Body>{}</soap:Body>"
      "</soap:Envelope>",
      kSoapNs, kTypesNs, kMessagesNs, header, body);
}

std::string distinguished_folder(std::string_view id, std::string_view delegate_mailbox) {
  if (delegate_mailbox.empty()) return "<t:DistinguishedFolderId Id=\"" + xml_escape(id) + "\"/>";
  return "<t:DistinguishedFolderId Id=\"" + xml_escape(id) + "\"><t:Mailbox><t:EmailAddress>" +
         xml_escape(delegate_mailbox) + "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>";
}

Result<Response> parse_response(int http_status, std::string_view body) {
  auto doc = std::make_shared<pugi::xml_document>();
  // No DOCTYPE handling exists in pugixml (it never loads external entities); parse_default
  // keeps entity escapes and reports malformed input.
  pugi::xml_parse_result parsed = doc->load_buffer(body.data(), body.size(), pugi::parse_default,
                                                   pugi::encoding_utf8);
  if (!parsed) return protocol_error(std::string("is not XML: ") + parsed.description(), body);
  pugi::xml_node env = doc->document_element();
  if (!is(env, kSoapNs, "Envelope")) return protocol_error("is not a SOAP envelope", body);
  pugi::xml_node soap_body = child(env, "Body");
  if (!soap_body) return protocol_error("has no SOAP body", body);
  Response r;
  r.doc = doc;
  r.server_version = version_of(child(env, "Header"));
  if (pugi::xml_node fault = child(soap_body, "Fault")) {
    r.fault = read_fault(http_status, fault);
    return r;
  }
  pugi::xml_node op = soap_body.first_child();
  while (op && op.type() != pugi::node_element) op = op.next_sibling();
  pugi::xml_node list = child(op, "ResponseMessages");
  for (pugi::xml_node m : list.children()) {
    if (m.type() == pugi::node_element) r.messages.push_back(read_message(m));
  }
  if (r.messages.empty()) return protocol_error("has no response messages", body);
  return r;
}

namespace {

Status auth_error(std::string_view code, std::string_view text, std::string_view what) {
  std::string fix;
  if (code == "ErrorImpersonateUserDenied") {
    fix = "the account may not impersonate this mailbox: on Exchange Server give it the "
          "ApplicationImpersonation role (New-ManagementRoleAssignment -Role "
          "ApplicationImpersonation -User <account>); in Exchange Online the app needs "
          "full_access_as_app with admin consent";
  } else if (code == "ErrorNonExistentMailbox") {
    fix = "no mailbox has this address: check `user` (or `address`)";
  } else if (code == "ErrorInvalidExchangeImpersonationHeaderData") {
    fix = "app-only tokens need impersonation: set `access = \"impersonation\"`";
  } else {
    fix = "the account has no right to this mailbox: grant FullAccess (Add-MailboxPermission "
          "-AccessRights FullAccess) or use impersonation";
  }
  return Status(ErrorKind::kAuth, fmt::format("{}: {} ({}): {}", what, code, text, fix),
                ErrorScope::kMailbox);
}

}  // namespace

Status code_status(std::string_view code, std::string_view text,
                   std::optional<std::chrono::milliseconds> back_off, std::string_view what) {
  if (code == "NoError") return Status::Ok();
  if (code == "ErrorServerBusy") {
    auto wait = std::chrono::ceil<std::chrono::seconds>(back_off.value_or(std::chrono::seconds(30)));
    if (wait < std::chrono::seconds(1)) wait = std::chrono::seconds(1);
    return Status(ErrorKind::kThrottled,
                  fmt::format("{}: Exchange is busy (ErrorServerBusy: {}); retry after {} s", what,
                              text, wait.count()),
                  ErrorScope::kMailbox)
        .with_retry_after(wait);
  }
  if (code == "ErrorAccessDenied" || code == "ErrorImpersonateUserDenied" ||
      code == "ErrorNonExistentMailbox" || code == "ErrorInvalidExchangeImpersonationHeaderData") {
    return auth_error(code, text, what);
  }
  std::string message = fmt::format("{}: {}{}{}", what, code, text.empty() ? "" : ": ", text);
  if (code == "ErrorItemNotFound") return Status(ErrorKind::kNotFound, message, ErrorScope::kMessage);
  if (code == "ErrorSchemaValidation" || code == "ErrorInvalidRequest" ||
      code == "ErrorInvalidServerVersion") {
    return Status(ErrorKind::kProtocol, message, ErrorScope::kConnection);
  }
  return Status(ErrorKind::kRejected, message, ErrorScope::kMailbox);
}

Status message_status(const ResponseMessage& m, std::string_view what) {
  if (m.response_class == "Success") return Status::Ok();
  if (m.code.empty()) {
    return Status(ErrorKind::kProtocol,
                  std::string(what) + ": response message " + m.response_class + " without a ResponseCode",
                  ErrorScope::kConnection);
  }
  return code_status(m.code, m.text, m.back_off, what);
}

Status fault_status(const Fault& f, std::string_view what) {
  if (f.code.empty()) {
    return Status(ErrorKind::kProtocol, fmt::format("{}: SOAP fault without a code (HTTP {}): {}",
                                                    what, f.http_status, f.text),
                  ErrorScope::kConnection);
  }
  Status s = code_status(f.code, f.text, f.back_off, what);
  // A fault whose code says nothing about the call (ErrorInternalServerError …) is the
  // server's failure, to be retried later.
  if (s.kind() == ErrorKind::kRejected) {
    return Status(ErrorKind::kProtocol, s.message() + fmt::format(" (SOAP fault, HTTP {})", f.http_status),
                  ErrorScope::kConnection);
  }
  return s;
}

}  // namespace mb::ews
