// File: tests/unit/core/config_test.cpp — load_config/parse_config: defaults, every validation
// rule (with file, line and key in the message), secret references and relative paths.
#include "core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kOrigin = "cfg.toml";

// The 1-based line of the first line of `text` containing `marker`.
int line_of(const std::string& text, const std::string& marker) {
  size_t pos = text.find(marker);
  EXPECT_NE(pos, std::string::npos) << marker;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n'));
}

std::string at(const std::string& text, const std::string& marker) {
  return std::string(kOrigin) + ":" + std::to_string(line_of(text, marker)) + ": ";
}

const std::string kMinimal = R"([[mailbox]]
name = "support"
type = "imap"
host = "mail.example.com"
user = "support@example.com"
password = "env:IMAP_PW"
)";

// A minimal valid mailbox with `extra` lines added inside its table.
std::string mailbox_with(const std::string& extra) { return kMinimal + extra + "\n"; }

TEST(ConfigTest, MinimalMailboxGetsDefaults) {
  auto cfg = parse_config(kMinimal, kOrigin, "/etc/mb");
  ASSERT_THAT(cfg, IsOk());
  ASSERT_EQ(cfg->mailboxes.size(), 1u);
  const MailboxConfig& m = cfg->mailboxes[0];
  EXPECT_EQ(m.port, 993);
  EXPECT_EQ(m.security, Security::kTls);
  EXPECT_EQ(m.auth, AuthMethod::kPassword);
  EXPECT_EQ(m.address, "support@example.com");
  EXPECT_EQ(m.folder, "INBOX");
  EXPECT_EQ(m.after, PostAction::mark_read());
  EXPECT_FALSE(m.after_filtered.has_value());
  EXPECT_EQ(m.poll_interval, std::chrono::seconds(120));
  EXPECT_EQ(m.max_per_poll, 50u);
  EXPECT_EQ(m.project, "IT");
  EXPECT_TRUE(m.enabled);
  EXPECT_TRUE(m.tls.verify);
  EXPECT_EQ(m.tls.min_version, TlsVersion::k1_2);
  EXPECT_EQ(m.timeouts.connect, std::chrono::seconds(30));
  EXPECT_EQ(m.timeouts.response, std::chrono::seconds(60));
  EXPECT_EQ(m.line_no, 1);
  EXPECT_EQ(cfg->store.path, "/etc/mb/mailbridge.db");
  EXPECT_EQ(cfg->monitor.auth_failure_threshold, 3u);
  EXPECT_EQ(cfg->ingest.max_subject_length, 400u);
  EXPECT_EQ(cfg->ingest.restricted_extensions.size(), 11u);
  EXPECT_TRUE(cfg->filters.use_defaults);
  EXPECT_EQ(cfg->filters.accept_from, "everyone");
  EXPECT_TRUE(cfg->warnings.empty());
}

// The sketch of SPEC §5, verbatim in its keys.
const std::string kSpecSketch = R"([store]
path = "mailbridge.db"

[tracking]
secret = "env:MAILBRIDGE_TRACKING_SECRET"
mailbox = "support"
sender = "outgoing"
delete_untracked = false

[[app]]
name = "contoso"
authority = "https://login.microsoftonline.com"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000000"
client_secret = "env:CONTOSO_SECRET"

[[mailbox]]
name = "support"
type = "imap"
host = "outlook.office365.com"
port = 993
security = "tls"
auth = "oauth2"
app = "contoso"
user = "support@contoso.com"
folder = "INBOX"
after = "move:Processed"
poll_interval = "2m"
max_per_poll = 50
project = "IT"
tls = { verify = true, ca_file = "ca.pem", min_version = "1.2" }
timeouts = { connect = "30s", response = "60s" }

[[mailbox]]
name = "sales"
type = "graph"
app = "contoso"
user = "sales@contoso.com"
folder = "Inbox"
after = "mark-read"

[[mailbox]]
name = "onprem"
type = "ews"
auth = "password"
user = "helpdesk@corp.example"
password = "env:EWS_PASSWORD"

[[sender]]
name = "outgoing"
type = "smtp"
host = "smtp.office365.com"
port = 587
security = "starttls"
auth = "oauth2"
app = "contoso"
user = "support@contoso.com"
one_message_per_connection = false

[service]
metrics = "127.0.0.1:9464"            # Prometheus /metrics and /healthz; off when absent
)";

TEST(ConfigTest, PollIntervalDefaultsPerTypeAndAnExplicitValueWins) {
  const std::string graph = R"([[app]]
name = "contoso"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = "env:APP_SECRET"

[[mailbox]]
name = "sales"
type = "graph"
app = "contoso"
user = "sales@contoso.com"
)";
  const std::string pop3 = R"([[mailbox]]
name = "legacy"
type = "pop3"
host = "pop.example.com"
user = "legacy"
password = "env:POP_PW"
)";
  auto g = parse_config(graph, kOrigin, "/etc/mb");
  ASSERT_THAT(g, IsOk());
  EXPECT_EQ(g->mailboxes.at(0).poll_interval, std::chrono::seconds(30));
  auto g90 = parse_config(graph + "poll_interval = \"90s\"\n", kOrigin, "/etc/mb");
  ASSERT_THAT(g90, IsOk());
  EXPECT_EQ(g90->mailboxes.at(0).poll_interval, std::chrono::seconds(90));
  auto p = parse_config(pop3, kOrigin, "/etc/mb");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->mailboxes.at(0).poll_interval, std::chrono::seconds(120));
  auto i = parse_config(mailbox_with("poll_interval = \"10s\""), kOrigin, "/etc/mb");
  ASSERT_THAT(i, IsOk());
  EXPECT_EQ(i->mailboxes.at(0).poll_interval, std::chrono::seconds(10));
}

TEST(ConfigTest, SpecSketchParses) {
  auto cfg = parse_config(kSpecSketch, kOrigin, "/srv/mb");
  ASSERT_THAT(cfg, IsOk());
  ASSERT_EQ(cfg->mailboxes.size(), 3u);
  EXPECT_EQ(cfg->mailboxes[0].after, PostAction::move("Processed"));
  EXPECT_EQ(cfg->mailboxes[0].tls.ca_file, "/srv/mb/ca.pem");
  EXPECT_EQ(cfg->mailboxes[0].poll_interval, std::chrono::seconds(120));
  EXPECT_EQ(cfg->mailboxes[1].auth, AuthMethod::kOAuth2);  // graph defaults to oauth2
  EXPECT_EQ(cfg->mailboxes[1].port, 443);
  // No poll_interval: each type's default (graph polls its delta query every 30 s).
  EXPECT_EQ(cfg->mailboxes[1].poll_interval, std::chrono::seconds(30));
  EXPECT_EQ(cfg->mailboxes[2].poll_interval, std::chrono::seconds(120));
  EXPECT_EQ(cfg->mailboxes[2].line_no, line_of(kSpecSketch, "name = \"onprem\"") - 1);
  ASSERT_EQ(cfg->senders.size(), 1u);
  EXPECT_EQ(cfg->senders[0].port, 587);
  EXPECT_EQ(cfg->senders[0].security, Security::kStartTls);
  ASSERT_NE(cfg->find_app("contoso"), nullptr);
  EXPECT_EQ(cfg->find_app("contoso")->client_secret.ref, "env:CONTOSO_SECRET");
  EXPECT_EQ(cfg->tracking.mailbox, "support");
  EXPECT_EQ(cfg->tracking.sender, "outgoing");
  EXPECT_NE(cfg->find_sender("outgoing"), nullptr);
  EXPECT_TRUE(cfg->warnings.empty());
}

struct BadCase {
  const char* name;
  std::string text;
  std::string marker;    // the line the error must name
  std::string message;   // what follows "cfg.toml:LINE: "
};

class ConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrorTest, NamesLineAndKey) {
  const BadCase& c = GetParam();
  auto cfg = parse_config(c.text, kOrigin, "/etc/mb");
  EXPECT_THAT(cfg, StatusIs(ErrorKind::kConfig, HasSubstr(at(c.text, c.marker) + c.message)));
}

const std::string kApp = R"([[app]]
name = "contoso"
tenant = "contoso.onmicrosoft.com"
client_id = "id"
client_secret = "env:CONTOSO_SECRET"
)";

// A delegated (public client) app, and the [auth] table it needs.
const std::string kDelegatedApp = R"([[app]]
name = "desk"
token_endpoint = "https://127.0.0.1:9443/token"
client_id = "public-id"
)";
const std::string kAuthKey = "[auth]\nkey = \"file:token.key\"\n";

INSTANTIATE_TEST_SUITE_P(
    Rules, ConfigErrorTest,
    ::testing::Values(
        BadCase{"max_per_poll_zero", mailbox_with("max_per_poll = 0"), "max_per_poll",
                "mailbox \"support\": max_per_poll must be 1–9999 (got 0)"},
        BadCase{"max_per_poll_big", mailbox_with("max_per_poll = 10000"), "max_per_poll",
                "mailbox \"support\": max_per_poll must be 1–9999 (got 10000)"},
        BadCase{"port_range", mailbox_with("port = 70000"), "port =",
                "mailbox \"support\": port must be 1–65535 (got 70000)"},
        BadCase{"port_type", mailbox_with("port = \"993\""), "port =",
                "mailbox \"support\": port must be an integer (got a string)"},
        BadCase{"type", R"([[mailbox]]
name = "support"
type = "smtp"
host = "h"
user = "u"
password = "env:X"
)", "type", "mailbox \"support\": type must be imap | pop3 | ews | graph (got \"smtp\")"},
        BadCase{"type_missing", R"([[mailbox]]
name = "support"
host = "h"
user = "u"
password = "env:X"
)", "[[mailbox]]", "mailbox \"support\": type is missing"},
        BadCase{"security", mailbox_with("security = \"ssl\""), "security",
                "mailbox \"support\": security must be tls | starttls | none (got \"ssl\")"},
        BadCase{"auth", mailbox_with("auth = \"kerberos\""), "auth",
                "mailbox \"support\": auth must be password | oauth2 (got \"kerberos\")"},
        BadCase{"oauth2_without_app", R"([[mailbox]]
name = "support"
type = "imap"
host = "h"
user = "u"
auth = "oauth2"
)", "auth", "mailbox \"support\": auth = \"oauth2\" needs app = "},
        BadCase{"oauth2_unknown_app", kApp + R"([[mailbox]]
name = "support"
type = "imap"
host = "h"
user = "u"
app = "fabrikam"
)", "fabrikam", "mailbox \"support\": app \"fabrikam\" is not defined by any [[app]]"},
        BadCase{"password_missing", R"([[mailbox]]
name = "support"
type = "imap"
host = "h"
user = "u"
)", "name", "mailbox \"support\": auth = \"password\" needs password = "},
        BadCase{"graph_password", R"([[mailbox]]
name = "support"
type = "graph"
user = "u"
auth = "password"
password = "env:X"
)", "auth", "mailbox \"support\": auth must be \"oauth2\" for type = \"graph\""},
        BadCase{"host_missing", R"([[mailbox]]
name = "support"
type = "pop3"
user = "u"
password = "env:X"
)", "[[mailbox]]", "mailbox \"support\": host is missing"},
        BadCase{"timeout_zero", mailbox_with("timeouts = { connect = \"0s\" }"), "timeouts",
                "mailbox \"support\": timeouts.connect must be 1–32767 seconds (got 0)"},
        BadCase{"timeout_big", mailbox_with("timeouts = { response = 40000 }"), "timeouts",
                "mailbox \"support\": timeouts.response must be 1–32767 seconds (got 40000)"},
        BadCase{"duration_syntax", mailbox_with("poll_interval = \"5x\""), "poll_interval",
                "mailbox \"support\": poll_interval must be a duration such as"},
        BadCase{"min_version", mailbox_with("tls = { min_version = \"1.1\" }"), "tls",
                "mailbox \"support\": tls.min_version must be \"1.2\" or \"1.3\" (got \"1.1\")"},
        BadCase{"pin", mailbox_with("tls = { pins = [\"abc\"] }"), "tls",
                "mailbox \"support\": tls.pins entry \"abc\" is not"},
        BadCase{"after", mailbox_with("after = \"archive\""), "after",
                "mailbox \"support\": after must be mark-read | delete | move:FOLDER | leave "
                "(got \"archive\")"},
        BadCase{"after_filtered", mailbox_with("after_filtered = \"move:\""), "after_filtered",
                "mailbox \"support\": after_filtered must be mark-read"},
        BadCase{"pop3_move", R"([[mailbox]]
name = "support"
type = "pop3"
host = "h"
user = "u"
password = "env:X"
after = "move:Done"
)", "after", "mailbox \"support\": after cannot be move: for pop3"},
        BadCase{"duplicate_name", kMinimal + R"([[mailbox]]
name = "support"  # again
type = "imap"
host = "h"
user = "u"
password = "env:X"
)", "# again", "mailbox \"support\": name \"support\" is already used by the mailbox on line 2"},
        BadCase{"unknown_key", mailbox_with("hots = \"x\""), "hots",
                "mailbox \"support\": unknown key \"hots\""},
        BadCase{"unknown_tls_key", mailbox_with("tls = { verfy = false }"), "tls",
                "mailbox \"support\": unknown key \"tls.verfy\""},
        BadCase{"unknown_top_level", "colour = \"blue\"\n" + kMinimal, "colour",
                "unknown key \"colour\""},
        BadCase{"unknown_store_key", "[store]\npth = \"x.db\"\n", "pth",
                "[store]: unknown key \"pth\""},
        BadCase{"mailbox_not_array", "[mailbox]\nname = \"x\"\n", "[mailbox]",
                "mailbox must be an array of tables: write [[mailbox]]"},
        BadCase{"env_name", mailbox_with("").replace(mailbox_with("").find("env:IMAP_PW"), 11,
                                                     "env:"),
                "password", "mailbox \"support\": password must name an environment variable"},
        BadCase{"project_unknown", "[[project]]\nname = \"HR\"\n" + mailbox_with(
                    "project = \"IT\""), "project = \"IT\"",
                "mailbox \"support\": project \"IT\" is not defined by any [[project]]"},
        BadCase{"tracking_mailbox", kMinimal + "[tracking]\nsecret = \"env:S\"\nmailbox = \"x\"\n",
                "mailbox = \"x\"", "[tracking]: mailbox \"x\" is not defined by any [[mailbox]]"},
        BadCase{"tracking_secret", kMinimal + "[tracking]\nmailbox = \"support\"\n",
                "[tracking]", "[tracking]: secret is missing"},
        BadCase{"filter_short", "[filters]\nsubjects = [\"Out of Office\", \"x\"]\n",
                "subjects", "[filters]: subjects entry \"x\" is too short"},
        BadCase{"accept_from", "[filters]\naccept_from = \"friends\"\n", "accept_from",
                "[filters]: accept_from must be everyone | requestors | technicians"},
        BadCase{"monitor", "[monitor]\nauth_failure_threshold = 0\n", "auth_failure",
                "[monitor]: auth_failure_threshold must be 1–100 (got 0)"},
        BadCase{"monitor_threshold_high", "[monitor]\nauth_failure_threshold = 101\n",
                "auth_failure", "[monitor]: auth_failure_threshold must be 1–100 (got 101)"},
        BadCase{"monitor_retry_short", "[monitor]\nauth_retry_interval = \"10s\"\n",
                "auth_retry", "[monitor]: auth_retry_interval must be 60–604800 seconds"},
        BadCase{"monitor_retry_syntax", "[monitor]\nauth_retry_interval = \"soon\"\n",
                "auth_retry", "[monitor]: auth_retry_interval must be a duration"},
        BadCase{"alert_placeholder", "[monitor.alert]\nsubject = \"{mailbx} is down\"\n",
                "subject", "[monitor.alert]: subject uses the unknown placeholder {mailbx}"},
        BadCase{"alert_empty_body", "[monitor.alert]\nbody = \"\"\n", "body",
                "[monitor.alert]: body must not be empty"},
        BadCase{"alert_project", "[[project]]\nname = \"IT\"\n[monitor.alert]\n"
                "project = \"Ops\"\n", "project = \"Ops\"",
                "[monitor.alert]: project \"Ops\" is not defined by any [[project]]"},
        BadCase{"alert_unknown_key", "[monitor.alert]\nsubjet = \"x\"\n", "subjet",
                "[monitor.alert]: unknown key \"subjet\""},
        BadCase{"subject_length", "[ingest]\nmax_subject_length = 0\n", "max_subject",
                "[ingest]: max_subject_length must be 1–100000 (got 0)"},
        BadCase{"user_role", "[[user]]\nemail = \"a@b.c\"\nrole = \"boss\"\n", "role",
                "user \"a@b.c\": role must be requestor | technician (got \"boss\")"},
        BadCase{"user_duplicate", "[[user]]\nemail = \"a@b.c\"\n[[user]]\nemail = \"A@b.c\"\n",
                "A@b.c", "user \"A@b.c\": email is already listed on line 2"},
        BadCase{"app_client_id", "[[app]]\nname = \"x\"\ntenant = \"t\"\n", "[[app]]",
                "app \"x\": client_id is missing"},
        BadCase{"app_tenant", "[[app]]\nname = \"x\"\nclient_id = \"c\"\n"
                "client_secret = \"env:S\"\n", "[[app]]",
                "app \"x\": tenant is missing (or set token_endpoint"},
        BadCase{"app_duplicate", kApp + "[[app]]\nname = \"contoso\"  # again\n"
                "tenant = \"t\"\nclient_id = \"c\"\nclient_secret = \"env:S\"\n", "# again",
                "app \"contoso\": name \"contoso\" is already used by the app on line 2"},
        BadCase{"app_token_endpoint_http",
                kApp + "token_endpoint = \"http://127.0.0.1/token\"\n", "token_endpoint",
                "app \"contoso\": token_endpoint must be an https:// URL (got "
                "\"http://127.0.0.1/token\")"},
        BadCase{"app_device_endpoint_hostless", kApp + "device_endpoint = \"https://\"\n",
                "device_endpoint", "app \"contoso\": device_endpoint must be an https:// URL"},
        BadCase{"app_flow_value", kApp + "flow = \"implicit\"\n", "flow",
                "app \"contoso\": flow must be app-only | delegated (got \"implicit\")"},
        BadCase{"app_only_without_credential", kDelegatedApp + "flow = \"app-only\"\n",
                "flow = ", "app \"desk\": flow = \"app-only\" (client credentials) needs "
                "client_secret"},
        BadCase{"app_secret_and_certificate", kApp + "certificate = \"file:app.pem\"\n",
                "certificate", "app \"contoso\": certificate and client_secret are exclusive"},
        BadCase{"app_scopes_empty", kApp + "scopes = []\n", "scopes",
                "app \"contoso\": scopes must list at least one scope"},
        BadCase{"app_scopes_blank", kApp + "scopes = [\"mail.access\", \"\"]\n", "scopes",
                "app \"contoso\": scopes entry \"\" must be one non-empty scope"},
        BadCase{"app_scopes_space", kApp + "scopes = [\"a b\"]\n", "scopes",
                "app \"contoso\": scopes entry \"a b\" must be one non-empty scope"},
        BadCase{"app_scopes_type", kApp + "scopes = \"mail.access\"\n", "scopes",
                "app \"contoso\": scopes must be an array of strings (got a string)"},
        BadCase{"app_tls", kApp + "tls = { min_version = \"1.0\" }\n", "tls",
                "app \"contoso\": tls.min_version must be \"1.2\" or \"1.3\""},
        BadCase{"app_timeouts", kApp + "timeouts = { response = 0 }\n", "timeouts",
                "app \"contoso\": timeouts.response must be 1–32767 seconds (got 0)"},
        BadCase{"app_unknown_key", kApp + "client_secert = \"env:X\"\n", "client_secert",
                "app \"contoso\": unknown key \"client_secert\""},
        BadCase{"delegated_without_auth_table", kDelegatedApp, "[[app]]",
                "app \"desk\": [auth] key is missing: app \"desk\" (line 1) is delegated"},
        BadCase{"delegated_without_key", "[auth]\ntoken_dir = \"tokens\"\n" + kDelegatedApp,
                "[auth]", "[auth] key is missing: app \"desk\" (line 3) is delegated"},
        BadCase{"auth_key_empty", kAuthKey.substr(0, 7) + "key = \"\"\n", "key",
                "[auth]: key must not be empty"},
        BadCase{"auth_token_dir_empty", "[auth]\ntoken_dir = \"\"\n", "token_dir",
                "[auth]: token_dir must not be empty"},
        BadCase{"auth_unknown_key", "[auth]\nkey_file = \"x\"\n", "key_file",
                "[auth]: unknown key \"key_file\""},
        BadCase{"app_authority", kApp + "authority = \"http://login\"\n", "authority",
                "app \"contoso\": authority must be an https:// URL"},
        BadCase{"sender_type",
                "[[sender]]\nname = \"out\"\ntype = \"imap\"\nuser = \"u\"\npassword = \"env:X\"\n",
                "type",
                "sender \"out\": type must be smtp | graph | ews (got \"imap\")"},
        BadCase{"toml_syntax", kMinimal + "max_per_poll = = 3\n", "max_per_poll", ""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigTest, MonitorKeysAndAlertTemplate) {
  auto defaults = parse_config(kMinimal, kOrigin);
  ASSERT_THAT(defaults, IsOk());
  EXPECT_EQ(defaults->monitor.auth_retry_interval, std::chrono::seconds(3600));
  EXPECT_EQ(defaults->monitor.alert.project, "");
  EXPECT_EQ(defaults->monitor.alert.subject, "Mailbox {mailbox} cannot sign in");
  EXPECT_EQ(defaults->monitor.alert.requester, "system");
  EXPECT_THAT(defaults->monitor.alert.body,
              AllOf(HasSubstr("{mailbox}"), HasSubstr("{user}"), HasSubstr("{host}"),
                    HasSubstr("{error}"), HasSubstr("{failures}"),
                    HasSubstr("mailbridge test-connection {mailbox}")));
  const std::string text = "[[project]]\nname = \"IT\"\n[[project]]\nname = \"Ops\"\n"
                           "[monitor]\nauth_failure_threshold = 5\nauth_retry_interval = "
                           "\"15m\"\n[monitor.alert]\nproject = \"Ops\"\nsubject = "
                           "\"{mailbox} down\"\nbody = \"{error} x{failures} {unused\"\n"
                           "requester = \"ops@example.com\"\n" + kMinimal;
  auto cfg = parse_config(text, kOrigin);
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->monitor.auth_failure_threshold, 5u);
  EXPECT_EQ(cfg->monitor.auth_retry_interval, std::chrono::seconds(900));
  EXPECT_EQ(cfg->monitor.alert.project, "Ops");
  EXPECT_EQ(cfg->monitor.alert.subject, "{mailbox} down");
  EXPECT_EQ(cfg->monitor.alert.body, "{error} x{failures} {unused");
  EXPECT_EQ(cfg->monitor.alert.requester, "ops@example.com");
}

TEST(ConfigTest, ServiceMetricsOnLoopbackOnly) {
  auto off = parse_config(kMinimal, kOrigin);
  ASSERT_THAT(off, IsOk());
  EXPECT_EQ(off->service.metrics, "");  // off by default
  auto sketch = parse_config(kSpecSketch, kOrigin);
  ASSERT_THAT(sketch, IsOk());
  EXPECT_EQ(sketch->service.metrics, "127.0.0.1:9464");
  for (const char* good : {"127.0.0.1:9464", "127.3.4.5:1", "[::1]:9464", "localhost:65535"}) {
    auto cfg = parse_config("[service]\nmetrics = \"" + std::string(good) + "\"\n" + kMinimal,
                            kOrigin);
    ASSERT_THAT(cfg, IsOk()) << good;
    EXPECT_EQ(cfg->service.metrics, good);
  }
  for (const char* bad : {"0.0.0.0:9464", "192.168.1.2:9464", "[::]:9464", "[::2]:9464",
                          "::1:9464", "example.com:9464", "127.0.0.1", "127.0.0.1:0",
                          "127.0.0.1:70000", "127.0.0.1:94x", ":9464", ""}) {
    const std::string text =
        kMinimal + "\n[service]\nmetrics = \"" + std::string(bad) + "\"\n";
    auto cfg = parse_config(text, kOrigin);
    EXPECT_THAT(cfg, StatusIs(ErrorKind::kConfig,
                              HasSubstr(at(text, "metrics =") + "[service]: metrics ")))
        << bad;
  }
  auto open = parse_config(kMinimal + "\n[service]\nmetrics = \"0.0.0.0:9464\"\n", kOrigin);
  EXPECT_THAT(open, StatusIs(ErrorKind::kConfig, HasSubstr("not a loopback address")));
  auto unknown = parse_config(kMinimal + "\n[service]\nmetric = \"127.0.0.1:1\"\n", kOrigin);
  EXPECT_THAT(unknown, StatusIs(ErrorKind::kConfig, HasSubstr("metric")));
}

TEST(ConfigTest, ReportsEveryProblemInFileOrder) {
  // [[sender]] is read after [[mailbox]], but its error comes first in the file; the
  // mailbox's error is reported too (it used to be hidden until the first was fixed).
  const std::string text = "[[sender]]\nname = \"out\"\ntype = \"fax\"\nuser = \"u\"\n"
                           "password = \"env:X\"\n" +
                           mailbox_with("max_per_poll = 0");
  auto cfg = parse_config(text, kOrigin);
  ASSERT_THAT(cfg, StatusIs(ErrorKind::kConfig, HasSubstr(at(text, "fax"))));
  const std::string& all = cfg.status().message();
  size_t fax = all.find(at(text, "fax") + "sender \"out\": type must be");
  size_t poll = all.find(at(text, "max_per_poll") + "mailbox \"support\": max_per_poll must be");
  ASSERT_NE(fax, std::string::npos) << all;
  ASSERT_NE(poll, std::string::npos) << all;
  EXPECT_LT(fax, poll);
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 1) << all;  // one error a line
}

TEST(ConfigTest, MisspelledKeyIsNamedWithTheLikelyKey) {
  std::string text = kMinimal;
  text.replace(text.find("host ="), 6, "hots =");
  auto cfg = parse_config(text, kOrigin);
  ASSERT_THAT(cfg, StatusIs(ErrorKind::kConfig,
                            HasSubstr(at(text, "hots") + "mailbox \"support\": unknown key "
                                                         "\"hots\" (did you mean \"host\"?)")));
  EXPECT_THAT(cfg.status().message(), HasSubstr("mailbox \"support\": host is missing"));
}

TEST(ConfigTest, MisspelledNestedAndTopLevelKeys) {
  auto nested = parse_config(mailbox_with("tls = { verfy = false }"), kOrigin);
  EXPECT_THAT(nested, StatusIs(ErrorKind::kConfig,
                               HasSubstr("unknown key \"tls.verfy\" (did you mean "
                                         "\"tls.verify\"?)")));
  auto top = parse_config("[stor]\npath = \"x.db\"\n" + kMinimal, kOrigin);
  EXPECT_THAT(top, StatusIs(ErrorKind::kConfig,
                            HasSubstr("unknown key \"stor\" (did you mean [store]?)")));
  // Nothing close: no guess.
  auto far = parse_config(mailbox_with("colour = \"red\""), kOrigin);
  EXPECT_THAT(far, StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("unknown key \"colour\""),
                                                      Not(HasSubstr("did you mean")))));
}

TEST(ConfigTest, LiteralSecretIsWarnedAboutByKeyNotValue) {
  std::string text = kMinimal;
  text.replace(text.find("env:IMAP_PW"), 11, "hunter2-literal");
  auto cfg = parse_config(text, kOrigin);
  ASSERT_THAT(cfg, IsOk());
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_THAT(cfg->warnings[0], HasSubstr(at(text, "password") + "mailbox \"support\": password"));
  EXPECT_THAT(cfg->warnings[0], Not(HasSubstr("hunter2")));
  EXPECT_EQ(cfg->mailboxes[0].password.ref, "hunter2-literal");
}

TEST(ConfigTest, VerifyFalseIsWarnedAbout) {
  auto cfg = parse_config(mailbox_with("tls = { verify = false }"), kOrigin);
  ASSERT_THAT(cfg, IsOk());
  EXPECT_FALSE(cfg->mailboxes[0].tls.verify);
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_THAT(cfg->warnings[0], HasSubstr("tls.verify = false"));
}

TEST(ConfigTest, FileSecretAndPathsAreRelativeToTheConfigDirectory) {
  std::string text = "[store]\npath = \"data/mb.db\"\n" + kMinimal +
                     "tls = { ca_file = \"/abs/ca.pem\" }\n";
  text.replace(text.find("env:IMAP_PW"), 11, "file:secrets/imap.pw");
  auto cfg = parse_config(text, kOrigin, "/etc/mb");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->store.path, "/etc/mb/data/mb.db");
  EXPECT_EQ(cfg->mailboxes[0].password.ref, "file:/etc/mb/secrets/imap.pw");
  EXPECT_EQ(cfg->mailboxes[0].tls.ca_file, "/abs/ca.pem");
  EXPECT_TRUE(cfg->warnings.empty());
}

TEST(ConfigTest, ExplicitValuesOverrideDefaults) {
  const std::string text = R"([[project]]
name = "HR"
modules = ["Case", "Ticket"]
[ingest]
restricted_extensions = [".EXE", "lnk"]
max_message_bytes = "10MB"
[filters]
use_defaults = false
senders = ["noreply"]
[[mailbox]]
name = "hr"
type = "pop3"
security = "starttls"
host = "h"
user = "hr"
address = "hr@example.com"
password = "env:P"
after = "move"
poll_interval = 45
max_per_poll = 9999
enabled = false
timeouts = { connect = "1m", response = "1h" }
)";
  // pop3 cannot move; check the rest with a valid action.
  std::string fixed = text;
  fixed.replace(fixed.find("after = \"move\""), 14, "after = \"leave\"");
  auto cfg = parse_config(fixed, kOrigin);
  ASSERT_THAT(cfg, IsOk());
  const MailboxConfig& m = cfg->mailboxes[0];
  EXPECT_EQ(m.port, 110);
  EXPECT_EQ(m.project, "HR");  // the first [[project]]
  EXPECT_EQ(m.address, "hr@example.com");
  EXPECT_EQ(m.after, PostAction::leave());
  EXPECT_EQ(m.poll_interval, std::chrono::seconds(45));
  EXPECT_EQ(m.max_per_poll, 9999u);
  EXPECT_FALSE(m.enabled);
  EXPECT_EQ(m.timeouts.connect, std::chrono::seconds(60));
  EXPECT_EQ(m.timeouts.response, std::chrono::seconds(3600));
  EXPECT_EQ(cfg->ingest.restricted_extensions, (std::vector<std::string>{"exe", "lnk"}));
  EXPECT_EQ(cfg->ingest.max_message_bytes, 10u * 1024 * 1024);
  EXPECT_FALSE(cfg->filters.use_defaults);
  EXPECT_EQ(cfg->projects[0].modules, (std::vector<std::string>{"Case", "Ticket"}));
}

TEST(ConfigTest, AppFlowDefaultsFromItsCredentials) {
  const std::string text = kApp + "[[app]]\nname = \"cert\"\ntenant = \"t\"\n"
                           "client_id = \"c\"\ncertificate = \"file:app.pem\"\n" +
                           kDelegatedApp + "[[app]]\nname = \"confidential\"\ntenant = "
                           "\"t\"\nclient_id = \"c\"\nclient_secret = \"env:S\"\n"
                           "flow = \"delegated\"\n" + kAuthKey;
  auto cfg = parse_config(text, kOrigin, "/etc/mb");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->find_app("contoso")->flow, "app-only");
  EXPECT_EQ(cfg->find_app("cert")->flow, "app-only");
  EXPECT_EQ(cfg->find_app("desk")->flow, "delegated");
  // A delegated confidential client keeps its secret.
  EXPECT_EQ(cfg->find_app("confidential")->flow, "delegated");
  EXPECT_EQ(cfg->find_app("confidential")->client_secret.ref, "env:S");
  EXPECT_EQ(cfg->find_app("desk")->line_no, line_of(text, "name = \"desk\"") - 1);
  EXPECT_EQ(cfg->auth.key.ref, "file:/etc/mb/token.key");
  EXPECT_EQ(cfg->auth.token_dir, "");  // AuthContext puts it beside the store
}

TEST(ConfigTest, AppKeysAreRead) {
  const std::string text = kDelegatedApp + R"(device_endpoint = "https://127.0.0.1:9443/device/auth"
scopes = ["mail.access", "offline_access"]
tls = { ca_file = "ca.pem", min_version = "1.3" }
timeouts = { connect = "5s", response = "20s" }
[auth]
token_dir = "state/tokens"
key = "env:MB_TOKEN_KEY"
)";
  auto cfg = parse_config(text, kOrigin, "/etc/mb");
  ASSERT_THAT(cfg, IsOk());
  const AppConfig& a = *cfg->find_app("desk");
  EXPECT_EQ(a.token_endpoint, "https://127.0.0.1:9443/token");
  EXPECT_EQ(a.device_endpoint, "https://127.0.0.1:9443/device/auth");
  EXPECT_EQ(a.scopes, (std::vector<std::string>{"mail.access", "offline_access"}));
  EXPECT_EQ(a.tls.ca_file, "/etc/mb/ca.pem");
  EXPECT_EQ(a.tls.min_version, TlsVersion::k1_3);
  EXPECT_EQ(a.timeouts.connect, std::chrono::seconds(5));
  EXPECT_EQ(a.timeouts.response, std::chrono::seconds(20));
  EXPECT_EQ(a.line_no, 1);
  EXPECT_EQ(cfg->auth.token_dir, "/etc/mb/state/tokens");
  EXPECT_EQ(cfg->auth.key.ref, "env:MB_TOKEN_KEY");
  EXPECT_TRUE(cfg->warnings.empty());
}

TEST(ConfigTest, MissingAuthKeySaysHowToMakeOne) {
  EXPECT_THAT(parse_config(kDelegatedApp, kOrigin),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("[auth] key is missing"),
                             HasSubstr("openssl rand -base64 32 > /etc/mailbridge/token.key"),
                             HasSubstr("key = \"file:/etc/mailbridge/token.key\""))));
}

TEST(ConfigTest, AppOnlyAppsNeedNoAuthKey) {
  auto cfg = parse_config(kApp, kOrigin);
  ASSERT_THAT(cfg, IsOk());
  EXPECT_TRUE(cfg->auth.key.empty());
}

TEST(ConfigTest, LiteralAuthKeyIsWarnedAboutByKeyNotValue) {
  auto cfg = parse_config(kDelegatedApp + "[auth]\nkey = \"c2VjcmV0LWtleS1tYXRlcmlhbA==\"\n",
                          kOrigin);
  ASSERT_THAT(cfg, IsOk());
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_THAT(cfg->warnings[0], HasSubstr("[auth]: key is written literally"));
  EXPECT_THAT(cfg->warnings[0], Not(HasSubstr("c2VjcmV0")));
}

TEST(ConfigTest, ParseDuration) {
  EXPECT_EQ(*parse_duration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(*parse_duration("2m"), std::chrono::seconds(120));
  EXPECT_EQ(*parse_duration("1h"), std::chrono::seconds(3600));
  EXPECT_EQ(*parse_duration("90"), std::chrono::seconds(90));
  EXPECT_THAT(parse_duration("m"), StatusIs(ErrorKind::kConfig, HasSubstr("\"m\"")));
  EXPECT_THAT(parse_duration("-5s"), StatusIs(ErrorKind::kConfig, HasSubstr("-5s")));
  EXPECT_THAT(parse_duration("5 m"), StatusIs(ErrorKind::kConfig, HasSubstr("5 m")));
}

TEST(ConfigTest, ParsePostAction) {
  EXPECT_EQ(*parse_post_action("mark-read"), PostAction::mark_read());
  EXPECT_EQ(*parse_post_action("delete"), PostAction::remove());
  EXPECT_EQ(*parse_post_action("leave"), PostAction::leave());
  EXPECT_EQ(*parse_post_action("move"), PostAction::move("Processed"));
  EXPECT_EQ(*parse_post_action("move:Archive/2026"), PostAction::move("Archive/2026"));
  EXPECT_THAT(parse_post_action("move:"), StatusIs(ErrorKind::kConfig, HasSubstr("move:")));
  EXPECT_THAT(parse_post_action("read"), StatusIs(ErrorKind::kConfig, HasSubstr("\"read\"")));
}

TEST(ConfigTest, DefaultPorts) {
  EXPECT_EQ(default_port(ConnectorType::kImap, Security::kTls), 993);
  EXPECT_EQ(default_port(ConnectorType::kImap, Security::kStartTls), 143);
  EXPECT_EQ(default_port(ConnectorType::kPop3, Security::kTls), 995);
  EXPECT_EQ(default_port(ConnectorType::kPop3, Security::kNone), 110);
  EXPECT_EQ(default_port(ConnectorType::kSmtp, Security::kTls), 465);
  EXPECT_EQ(default_port(ConnectorType::kSmtp, Security::kStartTls), 587);
  EXPECT_EQ(default_port(ConnectorType::kSmtp, Security::kNone), 25);
  EXPECT_EQ(default_port(ConnectorType::kGraph, Security::kTls), 443);
}

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_config_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// check-config's deep check (ConfigCheck::kDeep): what the file names and would fail later
// (EWS's own keys: config_ews_test.cpp).
TEST_F(LoadConfigTest, DeepCheckEws) {
  std::string ews = "[[mailbox]]\nname = \"onprem\"\ntype = \"ews\"\nuser = \"u@x\"\n"
                    "password = \"env:EWS_PW\"\n";
  EXPECT_THAT(parse_config(ews, kOrigin, dir_.string()), IsOk());  // every other command
  auto deep = parse_config(ews, kOrigin, dir_.string(), ConfigCheck::kDeep);
  EXPECT_THAT(deep, StatusIs(ErrorKind::kConfig,
                             HasSubstr(at(ews, "[[mailbox]]") + "mailbox \"onprem\": endpoint is "
                                                                "missing")));
  EXPECT_THAT(parse_config(ews + "enabled = false\n", kOrigin, dir_.string(), ConfigCheck::kDeep),
              IsOk());
  std::string sender = kMinimal + "[[sender]]\nname = \"out\"\ntype = \"ews\"\n"
                                  "user = \"u@x\"\npassword = \"env:EWS_PW\"\n";
  // An EWS sender without endpoint finds it by autodiscover: no error.
  EXPECT_THAT(parse_config(sender, kOrigin, dir_.string(), ConfigCheck::kDeep), IsOk());
}

TEST_F(LoadConfigTest, DeepCheckStoreDirectory) {
  auto check = [&](const std::string& path) {
    return parse_config("[store]\npath = \"" + path + "\"\n" + kMinimal, kOrigin,
                        dir_.string(), ConfigCheck::kDeep);
  };
  EXPECT_THAT(check("mailbridge.db"), IsOk());
  EXPECT_THAT(check("absent/mailbridge.db"),
              StatusIs(ErrorKind::kConfig,
                       HasSubstr(std::string(kOrigin) + ":2: [store]: path " +
                                 (dir_ / "absent/mailbridge.db").string() + ": the directory " +
                                 (dir_ / "absent").string() + " does not exist")));
  EXPECT_THAT(check("."), StatusIs(ErrorKind::kConfig, HasSubstr("is a directory")));
}

TEST_F(LoadConfigTest, DeepCheckCaFile) {
  auto check = [&](const std::string& file) {
    return parse_config(mailbox_with("tls = { ca_file = \"" + file + "\" }"), kOrigin,
                        dir_.string(), ConfigCheck::kDeep);
  };
  std::ofstream(dir_ / "ca.pem") << "-----BEGIN CERTIFICATE-----\nMIIB\n"
                                    "-----END CERTIFICATE-----\n";
  std::ofstream(dir_ / "notpem.txt") << "hello\n";
  EXPECT_THAT(check("ca.pem"), IsOk());
  EXPECT_THAT(check("absent.pem"),
              StatusIs(ErrorKind::kConfig,
                       HasSubstr("mailbox \"support\": tls.ca_file: cannot read file " +
                                 (dir_ / "absent.pem").string() + ": No such file")));
  EXPECT_THAT(check("notpem.txt"),
              StatusIs(ErrorKind::kConfig, HasSubstr("tls.ca_file file " +
                                                     (dir_ / "notpem.txt").string() +
                                                     " holds no PEM certificate")));
  EXPECT_THAT(check("/dev/zero"), StatusIs(ErrorKind::kConfig, HasSubstr("not a regular file")));
  // Not checked by the other commands (the connection reports it).
  EXPECT_THAT(parse_config(mailbox_with("tls = { ca_file = \"absent.pem\" }"), kOrigin,
                           dir_.string()),
              IsOk());
}

TEST_F(LoadConfigTest, DeepCheckSecrets) {
  ::unsetenv("MB_CONFIG_TEST_UNSET");
  std::string text = kMinimal;
  text.replace(text.find("env:IMAP_PW"), 11, "env:MB_CONFIG_TEST_UNSET");
  auto cfg = parse_config(text, kOrigin, dir_.string(), ConfigCheck::kDeep);
  ASSERT_THAT(cfg, IsOk());  // the service may have it in its environment: a warning
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_THAT(cfg->warnings[0], HasSubstr("password names the environment variable "
                                          "MB_CONFIG_TEST_UNSET, which is not set here"));
  std::string file = kMinimal;
  file.replace(file.find("env:IMAP_PW"), 11, "file:pw.txt");
  EXPECT_THAT(parse_config(file, kOrigin, dir_.string(), ConfigCheck::kDeep),
              StatusIs(ErrorKind::kConfig,
                       HasSubstr(at(file, "pw.txt") + "mailbox \"support\": password: cannot "
                                                      "read file " + (dir_ / "pw.txt").string())));
  std::ofstream(dir_ / "pw.txt") << "\n";
  EXPECT_THAT(parse_config(file, kOrigin, dir_.string(), ConfigCheck::kDeep),
              StatusIs(ErrorKind::kConfig, HasSubstr("is empty")));
  std::ofstream(dir_ / "pw.txt") << "s3cret\n";
  auto ok = parse_config(file, kOrigin, dir_.string(), ConfigCheck::kDeep);
  ASSERT_THAT(ok, IsOk());
  EXPECT_TRUE(ok->warnings.empty());
}

TEST(ExampleConfigTest, ShippedExampleIsValidAndWarningFree) {
  const std::string path = std::string(MB_SOURCE_DIR) + "/mailbridge.example.toml";
  auto cfg = load_config(path);
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->mailboxes.size(), 4u);
  EXPECT_EQ(cfg->senders.size(), 1u);
  EXPECT_TRUE(cfg->warnings.empty()) << cfg->warnings.front();
  EXPECT_EQ(cfg->mailboxes[3].password.ref,
            "file:" + std::string(MB_SOURCE_DIR) + "/secrets/pop.pw");
}

TEST_F(LoadConfigTest, ResolvesRelativePathsAgainstTheFile) {
  auto path = dir_ / "mailbridge.toml";
  std::ofstream(path) << kMinimal;
  auto cfg = load_config(path.string());
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->path, path.string());
  EXPECT_EQ(cfg->store.path, (dir_ / "mailbridge.db").string());
}

TEST_F(LoadConfigTest, ErrorsNameTheFile) {
  auto path = dir_ / "broken.toml";
  std::ofstream(path) << mailbox_with("max_per_poll = 0");
  EXPECT_THAT(load_config(path.string()),
              StatusIs(ErrorKind::kConfig, HasSubstr(path.string() + ":7: mailbox \"support\"")));
}

TEST_F(LoadConfigTest, MissingFile) {
  auto path = dir_ / "absent.toml";
  EXPECT_THAT(load_config(path.string()),
              StatusIs(ErrorKind::kConfig, HasSubstr("configuration: cannot read file " +
                                                     path.string())));
}

}  // namespace
}  // namespace mb
