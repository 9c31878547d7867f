// File: tests/unit/connectors/ews/ews_soap_test.cpp — EWS envelopes and answers
// (connectors/ews/ews_soap.h) on the documentation's example payloads
// (tests/data/ews/doc-examples/, the same files the EWS stand-in is checked against) and on
// malformed and hostile answers.
#include "connectors/ews/ews_soap.h"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/status_matchers.h"

namespace mb::ews {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The documented response body of one example.
std::string doc_body(const std::string& name) {
  std::ifstream in(std::string(MB_SOURCE_DIR) + "/tests/data/ews/doc-examples/" + name + ".json");
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str()).at("body_xml").get<std::string>();
}

Response parsed(const std::string& name, int status = 200) {
  auto r = parse_response(status, doc_body(name));
  EXPECT_THAT(r, IsOk()) << name;
  return r.ok() ? *r : Response{};
}

TEST(EwsSoapDocTest, SyncFolderItemsSuccess) {
  Response r = parsed("sync-folder-items");
  ASSERT_FALSE(r.fault);
  ASSERT_EQ(r.messages.size(), 1u);
  const ResponseMessage& m = r.messages[0];
  EXPECT_EQ(m.response_class, "Success");
  EXPECT_EQ(m.code, "NoError");
  EXPECT_THAT(message_status(m, "SyncFolderItems"), IsOk());
  EXPECT_EQ(child_text(m.node, "SyncState"), "H4sIAAAAA=");
  EXPECT_EQ(child_text(m.node, "IncludesLastItemInRange"), "true");
  pugi::xml_node create = child(child(m.node, "Changes"), "Create");
  EXPECT_EQ(std::string(child(child(create, "MeetingRequest"), "ItemId").attribute("Id").value()),
            "AQApAHRwA==");
  EXPECT_EQ(r.server_version, "8.0.628.0");
}

TEST(EwsSoapDocTest, SyncFolderItemsInvalidState) {
  Response r = parsed("sync-folder-items-invalid-state");
  ASSERT_EQ(r.messages.size(), 1u);
  const ResponseMessage& m = r.messages[0];
  EXPECT_EQ(m.response_class, "Error");
  EXPECT_EQ(m.code, "ErrorInvalidSyncStateData");
  EXPECT_EQ(m.text, "Synchronization state data is corrupt or otherwise invalid.");
  EXPECT_THAT(message_status(m, "SyncFolderItems inbox"),
              StatusIs(ErrorKind::kRejected,
                       AllOf(HasSubstr("SyncFolderItems inbox"), HasSubstr("ErrorInvalidSyncStateData"),
                             HasSubstr("corrupt"))));
}

TEST(EwsSoapDocTest, FindItemWithTheDocumentationsHttpsNamespaces) {
  // The page writes the EWS namespaces https://; they are read as Exchange's http:// ones.
  Response r = parsed("find-item");
  ASSERT_EQ(r.messages.size(), 1u);
  pugi::xml_node root = child(r.messages[0].node, "RootFolder");
  EXPECT_EQ(std::string(root.attribute("TotalItemsInView").value()), "10");
  EXPECT_EQ(std::string(root.attribute("IncludesLastItemInRange").value()), "true");
  int n = 0;
  for (pugi::xml_node item : child(root, "Items").children()) {
    if (item.type() == pugi::node_element) ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(EwsSoapDocTest, FindItemError) {
  Response r = parsed("find-item-error");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].code, "ErrorInvalidIdMalformed");
  EXPECT_EQ(r.messages[0].text, "Id is malformed.");
}

TEST(EwsSoapDocTest, GetItemMimeContent) {
  Response r = parsed("get-item-mime");  // its SOAP namespace is https:// on the page too
  ASSERT_EQ(r.messages.size(), 1u);
  pugi::xml_node mime = child(child(child(r.messages[0].node, "Items"), "Message"), "MimeContent");
  EXPECT_EQ(std::string(mime.attribute("CharacterSet").value()), "UTF-8");
  EXPECT_EQ(std::string(mime.text().get()), "UmVjZ6IGZyb2b2suY29y5hMzgwZTA1YtDQo=");
  EXPECT_EQ(r.server_version, "15.0.893.17");
}

TEST(EwsSoapDocTest, ServerBusyFaultCarriesItsBackOff) {
  Response r = parsed("server-busy", 500);
  ASSERT_TRUE(r.fault);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.fault->http_status, 500);
  EXPECT_EQ(r.fault->code, "ErrorServerBusy");
  EXPECT_EQ(r.fault->text, "The server cannot service this request right now. Try again later.");
  ASSERT_TRUE(r.fault->back_off);
  EXPECT_EQ(r.fault->back_off->count(), 297749);
  Status s = fault_status(*r.fault, "GetFolder");
  EXPECT_THAT(s, StatusIs(ErrorKind::kThrottled, HasSubstr("retry after 298 s")));
  EXPECT_EQ(s.retry_after(), std::chrono::seconds(298));
}

TEST(EwsSoapTest, ServerBusyAsAResponseMessageAndWithoutABackOff) {
  const std::string body =
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
      "<m:FindItemResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" "
      "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><m:ResponseMessages>"
      "<m:FindItemResponseMessage ResponseClass=\"Error\"><m:MessageText>busy</m:MessageText>"
      "<m:ResponseCode>ErrorServerBusy</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
      "<m:MessageXml><t:Value Name=\"BackOffMilliseconds\">30000</t:Value></m:MessageXml>"
      "</m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse></s:Body></s:Envelope>";
  auto r = parse_response(200, body);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->messages.size(), 1u);
  EXPECT_EQ(r->messages[0].back_off, std::chrono::milliseconds(30000));
  EXPECT_EQ(message_status(r->messages[0], "FindItem").retry_after(), std::chrono::seconds(30));
  // No BackOffMilliseconds: 30 s, and never less than 1 s.
  EXPECT_EQ(code_status("ErrorServerBusy", "", std::nullopt, "x").retry_after(),
            std::chrono::seconds(30));
  EXPECT_EQ(code_status("ErrorServerBusy", "", std::chrono::milliseconds(5), "x").retry_after(),
            std::chrono::seconds(1));
}

TEST(EwsSoapTest, AuthorizationCodesAreAuthFailuresNamingTheFix) {
  EXPECT_THAT(code_status("ErrorImpersonateUserDenied", "The account does not have permission",
                          std::nullopt, "EWS x"),
              StatusIs(ErrorKind::kAuth, HasSubstr("ApplicationImpersonation")));
  EXPECT_THAT(code_status("ErrorAccessDenied", "Access is denied.", std::nullopt, "EWS x"),
              StatusIs(ErrorKind::kAuth, HasSubstr("FullAccess")));
  EXPECT_THAT(code_status("ErrorNonExistentMailbox", "no mailbox", std::nullopt, "EWS x"),
              StatusIs(ErrorKind::kAuth, HasSubstr("ErrorNonExistentMailbox")));
  EXPECT_THAT(code_status("ErrorInvalidExchangeImpersonationHeaderData", "must be present",
                          std::nullopt, "EWS x"),
              StatusIs(ErrorKind::kAuth, HasSubstr("impersonation")));
  EXPECT_THAT(code_status("ErrorItemNotFound", "gone", std::nullopt, "GetItem"),
              StatusIs(ErrorKind::kNotFound, HasSubstr("gone")));
  EXPECT_THAT(code_status("ErrorSchemaValidation", "bad", std::nullopt, "GetItem"),
              StatusIs(ErrorKind::kProtocol, HasSubstr("ErrorSchemaValidation")));
  EXPECT_THAT(code_status("NoError", "", std::nullopt, "x"), IsOk());
}

TEST(EwsSoapTest, AFaultWithAnUnrelatedCodeIsAProtocolError) {
  Fault f;
  f.http_status = 500;
  f.code = "ErrorInternalServerError";
  f.text = "An internal server error occurred.";
  EXPECT_THAT(fault_status(f, "GetItem"),
              StatusIs(ErrorKind::kProtocol, AllOf(HasSubstr("ErrorInternalServerError"),
                                                   HasSubstr("HTTP 500"))));
}

TEST(EwsSoapTest, MalformedAnswersAreProtocolErrorsQuotingTheirStartSafely) {
  EXPECT_THAT(parse_response(200, "<html><body>Service Unavailable"),
              StatusIs(ErrorKind::kProtocol, HasSubstr("is not XML")));
  EXPECT_THAT(parse_response(200, "<html><body>x</body></html>"),
              StatusIs(ErrorKind::kProtocol, HasSubstr("not a SOAP envelope")));
  EXPECT_THAT(parse_response(200, ""), StatusIs(ErrorKind::kProtocol, HasSubstr("empty body")));
  EXPECT_THAT(parse_response(200, std::string("\x1b[31mred\r\n", 9)),
              StatusIs(ErrorKind::kProtocol, AllOf(HasSubstr("\\x1b"), Not(HasSubstr("\x1b")))));
  const std::string no_messages =
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
      "<m:GetItemResponse xmlns:m=\"x\"/></s:Body></s:Envelope>";
  EXPECT_THAT(parse_response(200, no_messages),
              StatusIs(ErrorKind::kProtocol, HasSubstr("no response messages")));
  // Another namespace for the envelope is not SOAP 1.1.
  EXPECT_THAT(parse_response(200, "<s:Envelope xmlns:s=\"urn:other\"><s:Body/></s:Envelope>"),
              StatusIs(ErrorKind::kProtocol, HasSubstr("not a SOAP envelope")));
}

TEST(EwsSoapTest, EnvelopeCarriesTheVersionAndImpersonationEscaped) {
  std::string xml = envelope({.impersonate = "a&b@corp.example"},
                             "<m:GetFolder><m:FolderIds>" + distinguished_folder("inbox") +
                                 "</m:FolderIds></m:GetFolder>");
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(xml.c_str()));
  pugi::xml_node env = doc.document_element();
  EXPECT_EQ(std::string(env.attribute("xmlns:soap").value()), kSoapNs);
  pugi::xml_node header = child(env, "Header");
  EXPECT_EQ(std::string(child(header, "RequestServerVersion").attribute("Version").value()),
            "Exchange2013_SP1");
  EXPECT_EQ(child_text(child(child(header, "ExchangeImpersonation"), "ConnectingSID"),
                       "PrimarySmtpAddress"),
            "a&b@corp.example");
  EXPECT_TRUE(child(child(child(child(env, "Body"), "GetFolder"), "FolderIds"),
                    "DistinguishedFolderId"));
  // No impersonation: no header for it.
  EXPECT_THAT(envelope({}, "<m:X/>"), Not(HasSubstr("ExchangeImpersonation")));
}

TEST(EwsSoapTest, DelegateFolderNamesTheMailbox) {
  EXPECT_EQ(distinguished_folder("inbox"), "<t:DistinguishedFolderId Id=\"inbox\"/>");
  EXPECT_EQ(distinguished_folder("inbox", "x@corp.example"),
            "<t:DistinguishedFolderId Id=\"inbox\"><t:Mailbox><t:EmailAddress>x@corp.example"
            "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>");
}

}  // namespace
}  // namespace mb::ews
