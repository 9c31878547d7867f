// File: tests/unit/core/connector_types_test.cpp — the table of connector types
// (core/connector_types.h): names, lookups, ports and what each type allows.
#include "core/connector_types.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

TEST(ConnectorTypesTest, EveryRowIsFoundByItsTypeAndName) {
  for (const ConnectorSpec& spec : connector_specs()) {
    EXPECT_EQ(&connector_spec(spec.type), &spec) << spec.name;
    EXPECT_EQ(find_connector(spec.name), &spec) << spec.name;
    EXPECT_EQ(to_string(spec.type), spec.name);
    EXPECT_TRUE(spec.mailbox_rank > 0 || spec.sender_rank > 0) << spec.name;
  }
  EXPECT_EQ(find_connector("maildir"), nullptr);
  EXPECT_EQ(find_connector(""), nullptr);
}

TEST(ConnectorTypesTest, NamesAndParsesAuthMethods) {
  for (AuthMethod a : {AuthMethod::kPassword, AuthMethod::kOAuth2, AuthMethod::kNone}) {
    EXPECT_EQ(parse_auth_method(to_string(a)), a);
  }
  EXPECT_EQ(to_string(AuthMethod::kOAuth2), "oauth2");
  EXPECT_EQ(parse_auth_method("OAuth2"), std::nullopt);
}

TEST(ConnectorTypesTest, DefaultPollIntervalPerMailboxType) {
  using std::chrono::seconds;
  EXPECT_EQ(connector_spec(ConnectorType::kGraph).default_poll_interval, seconds(30));
  EXPECT_EQ(connector_spec(ConnectorType::kImap).default_poll_interval, seconds(120));
  EXPECT_EQ(connector_spec(ConnectorType::kPop3).default_poll_interval, seconds(120));
  for (const ConnectorSpec& spec : connector_specs()) {
    EXPECT_EQ(spec.mailbox_rank > 0, spec.default_poll_interval > seconds(0)) << spec.name;
  }
}

TEST(ConnectorTypesTest, KnowsWhatEachTypeAllows) {
  EXPECT_TRUE(connector_spec(ConnectorType::kEws).mailbox_implemented);
  EXPECT_TRUE(connector_spec(ConnectorType::kEws).sender_implemented);
  EXPECT_TRUE(connector_spec(ConnectorType::kEws).ntlm_auth);
  EXPECT_TRUE(connector_spec(ConnectorType::kEws).needs_endpoint);
  EXPECT_FALSE(connector_spec(ConnectorType::kImap).ntlm_auth);
  EXPECT_FALSE(connector_spec(ConnectorType::kPop3).folders);
  EXPECT_FALSE(connector_spec(ConnectorType::kPop3).read_flag);
  EXPECT_FALSE(connector_spec(ConnectorType::kGraph).password_auth);
  EXPECT_TRUE(connector_spec(ConnectorType::kSmtp).relay);
  EXPECT_TRUE(connector_spec(ConnectorType::kImap).needs_host);
  EXPECT_FALSE(connector_spec(ConnectorType::kGraph).needs_host);
  EXPECT_EQ(connector_spec(ConnectorType::kSmtp).mailbox_rank, 0);
  EXPECT_EQ(connector_owning_key("helo_name"), &connector_spec(ConnectorType::kSmtp));
  EXPECT_EQ(connector_owning_key("max_concurrency"), &connector_spec(ConnectorType::kGraph));
  EXPECT_EQ(connector_owning_key("host"), nullptr);
  EXPECT_EQ(default_port(ConnectorType::kEws, Security::kTls), 443);
  EXPECT_EQ(default_port(ConnectorType::kImap, Security::kNone), 143);
}

}  // namespace
}  // namespace mb
