// File: connectors/ews/ews_soap.h — Exchange Web Services' SOAP, as pure functions over text
// (no I/O): the request envelope (RequestServerVersion, ExchangeImpersonation), folder ids
// for the caller's own mailbox or a delegate's, and the answer read back: SOAP faults and
// response messages (ResponseClass, ResponseCode, MessageText, MessageXml's
// BackOffMilliseconds), with the Status each code means.
//
//   std::string xml = ews::envelope({.impersonate = "helpdesk@corp.example"},
//                                   "<m:GetFolder>…</m:GetFolder>");
//   auto answer = ews::parse_response(http_status, body);     // kProtocol when malformed
//   if (answer->fault) return ews::fault_status(*answer->fault, "GetFolder");
//   for (const auto& m : answer->messages) MB_RETURN_IF_ERROR(ews::message_status(m, "…"));
//
// Elements are matched by local name and namespace URI (any prefix), so both Exchange's
// answers and the documentation's examples (which write some namespace URIs https://) parse.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "core/status.h"

namespace mb::ews {

inline constexpr std::string_view kSoapNs = "http://schemas.xmlsoap.org/soap/envelope/";
inline constexpr std::string_view kTypesNs = "http://schemas.microsoft.com/exchange/services/2006/types";
inline constexpr std::string_view kMessagesNs =
    "http://schemas.microsoft.com/exchange/services/2006/messages";
// The lowest schema version the connector asks for (issue 16: Exchange2013_SP1 as the floor).
inline constexpr std::string_view kServerVersion = "Exchange2013_SP1";

std::string xml_escape(std::string_view text);

struct EnvelopeOptions {
  std::string version = std::string(kServerVersion);
  // The mailbox (SMTP address) the call acts as by impersonation; empty: the caller's own.
  std::string impersonate{};
};

// The whole request: <soap:Envelope> with prefixes soap, t and m declared, the header, and
// `body` (the operation element, already XML) in <soap:Body>.
std::string envelope(const EnvelopeOptions& options, std::string_view body);

// <t:DistinguishedFolderId Id="inbox"/>, with <t:Mailbox><t:EmailAddress> for a delegate's
// mailbox when `delegate_mailbox` is not empty.
std::string distinguished_folder(std::string_view id, std::string_view delegate_mailbox = {});

// One <m:…ResponseMessage>.
struct ResponseMessage {
  std::string response_class;  // Success, Warning, Error
  std::string code;            // ResponseCode: NoError, ErrorServerBusy, …
  std::string text;            // MessageText
  std::optional<std::chrono::milliseconds> back_off{};  // MessageXml BackOffMilliseconds
  pugi::xml_node node{};       // the element itself, for the operation's fields
};

// A <soap:Fault> (Exchange sends it with HTTP 500).
struct Fault {
  int http_status = 0;
  std::string code;  // detail ResponseCode, else faultcode without its prefix
  std::string text;  // detail Message, else faultstring
  std::optional<std::chrono::milliseconds> back_off{};
};

struct Response {
  std::shared_ptr<pugi::xml_document> doc;  // owns what the nodes point into
  std::optional<Fault> fault{};
  std::vector<ResponseMessage> messages{};  // in order; empty with a fault
  std::string server_version{};             // ServerVersionInfo "15.2.1544.4", when sent
};

// Reads an answer. kProtocol (scope connection, the body's start quoted, control characters
// escaped) when it is not XML, not a SOAP envelope, or has neither a fault nor response
// messages; the HTTP status is the caller's to judge beforehand (a 401 has no envelope).
Result<Response> parse_response(int http_status, std::string_view body);

// What a code means for the caller, `what` naming the call ("GetFolder inbox of x@y"):
// NoError → OK; ErrorServerBusy → kThrottled with retry_after (BackOffMilliseconds, at least
// 1 s; 30 s when absent); ErrorAccessDenied, ErrorImpersonateUserDenied,
// ErrorNonExistentMailbox, ErrorInvalidExchangeImpersonationHeaderData → kAuth (scope
// mailbox) with the cause and the step that fixes it; ErrorItemNotFound → kNotFound (scope
// message); ErrorSchemaValidation, ErrorInvalidRequest, ErrorInvalidServerVersion →
// kProtocol; any other error → kRejected (the call was refused, the connection is fine).
Status code_status(std::string_view code, std::string_view text,
                   std::optional<std::chrono::milliseconds> back_off, std::string_view what);
Status message_status(const ResponseMessage& m, std::string_view what);
Status fault_status(const Fault& f, std::string_view what);

// The first child element with this local name (any prefix), or an empty node.
pugi::xml_node child(pugi::xml_node parent, std::string_view local_name);
// Its text, trimmed.
std::string child_text(pugi::xml_node parent, std::string_view local_name);
std::string_view local_name(pugi::xml_node node);

}  // namespace mb::ews
