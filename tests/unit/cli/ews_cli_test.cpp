// File: tests/unit/cli/ews_cli_test.cpp — the CLI's EWS parts without a server: doctor's fix
// for each failed step (cli/doctor_ews.cpp), and the Exchange Online warning that `sync`
// and `check-config` print once at start-up for an EWS mailbox pointed at Exchange Online.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "cli/doctor.h"

namespace mb {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using cli::doctor::EwsTarget;
using cli::doctor::ews_fix;

EwsTarget onprem(AuthMethod auth, MailboxAccess access) {
  return {"https://mail.corp.example/EWS/Exchange.asmx", auth, "CORP\\svc", access,
          "helpdesk@corp.example", "inbox", ""};
}

TEST(EwsDoctorTest, EachFailedStepGetsItsCommand) {
  const Status denied(ErrorKind::kAuth, "GetFolder: ErrorImpersonateUserDenied (…): …");
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kNtlm, MailboxAccess::kImpersonation), "access", denied),
              AllOf(HasSubstr("New-ManagementScope -Name \"mailbridge mailboxes\""),
                    HasSubstr("New-ManagementRoleAssignment -Name \"mailbridge impersonation\" "
                              "-Role ApplicationImpersonation -User CORP\\svc "
                              "-CustomRecipientWriteScope \"mailbridge mailboxes\"")));
  const Status no_rights(ErrorKind::kAuth, "GetFolder: ErrorAccessDenied (Access is denied.)");
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kPassword, MailboxAccess::kDelegate), "access", no_rights),
              HasSubstr("Add-MailboxPermission -Identity helpdesk@corp.example -User CORP\\svc "
                        "-AccessRights FullAccess -InheritanceType All -AutoMapping $false"));
  const Status no_basic(ErrorKind::kAuth, "HTTP 401; the server offers Negotiate, NTLM; Basic is "
                                          "not enabled on the EWS virtual directory");
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kPassword, MailboxAccess::kOwn), "sign-in", no_basic),
              AllOf(HasSubstr("Set-WebServicesVirtualDirectory"), HasSubstr("-BasicAuthentication $true"),
                    HasSubstr("auth = \"ntlm\"")));
  const Status wrong(ErrorKind::kAuth, "HTTP 401; the server offers Negotiate, NTLM, Basic");
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kNtlm, MailboxAccess::kOwn), "sign-in", wrong),
              HasSubstr("Exchange refused the password of CORP\\svc"));
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kNtlm, MailboxAccess::kOwn), "endpoint",
                      Status(ErrorKind::kTls, "certificate verify failed")),
              HasSubstr("tls = { ca_file"));
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kNtlm, MailboxAccess::kOwn), "endpoint",
                      Status(ErrorKind::kNetwork, "connection refused")),
              HasSubstr("Get-WebServicesVirtualDirectory"));
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kNtlm, MailboxAccess::kOwn), "count", Status()), IsEmpty());
}

TEST(EwsDoctorTest, A403FromExchangeOnlineNamesTheTenantsAllowList) {
  EwsTarget cloud{"https://outlook.office365.com/EWS/Exchange.asmx", AuthMethod::kOAuth2, "",
                  MailboxAccess::kImpersonation, "helpdesk@contoso.com", "inbox",
                  "11111111-2222-3333-4444-555555555555"};
  const Status forbidden(ErrorKind::kAuth, "Exchange Online refused EWS (HTTP 403)");
  EXPECT_THAT(ews_fix(cloud, "access", forbidden),
              AllOf(HasSubstr("Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs"),
                    HasSubstr("11111111-2222-3333-4444-555555555555"), HasSubstr("1 April 2027"),
                    HasSubstr("type = \"graph\"")));
  EXPECT_THAT(ews_fix(onprem(AuthMethod::kNtlm, MailboxAccess::kOwn), "access", forbidden),
              HasSubstr("Set-CASMailbox -Identity CORP\\svc -EwsEnabled $true"));
}

// A loopback port with nothing listening: bound, then released.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// The warning comes once at start-up, from the configuration: `sync` of another mailbox
// (no connection to Exchange Online is made) logs it once, and check-config prints it.
TEST(EwsRetirementTest, SyncAndCheckConfigWarnOnceAboutExchangeOnline) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("mb_ews_cli_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "mailbridge.toml").string();
  std::ofstream(config)
      << "[store]\npath = \"mailbridge.db\"\n\n"
         "[[app]]\nname = \"contoso\"\ntenant = \"contoso.onmicrosoft.com\"\n"
         "client_id = \"00000000-0000-0000-0000-000000000000\"\nclient_secret = \"env:MB_EWS_CLI_SECRET\"\n\n"
         "[[mailbox]]\nname = \"local\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = "
      << closed_port()
      << "\nsecurity = \"none\"\nuser = \"u@example.com\"\npassword = \"env:MB_EWS_CLI_PW\"\n"
         "timeouts = { connect = \"5s\", response = \"5s\" }\n\n"
         "[[mailbox]]\nname = \"cloud\"\ntype = \"ews\"\napp = \"contoso\"\nuser = \"helpdesk@contoso.com\"\n"
         "endpoint = \"https://outlook.office365.com/EWS/Exchange.asmx\"\nafter = \"leave\"\n";
  ::setenv("MB_EWS_CLI_PW", "pw", 1);
  ::setenv("MB_EWS_CLI_SECRET", "secret", 1);
  auto run = [&](std::vector<std::string> args, std::string& out, std::string& err) {
    args.insert(args.begin(), {"--config", config});
    std::ostringstream o, e;
    int code = run_cli(std::move(args), o, e);
    out = o.str();
    err = e.str();
    return code;
  };
  const std::string warning = "mailbox \"cloud\": endpoint is Exchange Online, where EWS ends on 1 April 2027";
  std::string out, err;
  run({"sync", "local"}, out, err);
  EXPECT_EQ(count_of(err, warning), 1u) << err;
  EXPECT_THAT(err, HasSubstr("type = \"graph\" with the same app registration, app = \"contoso\""));
  EXPECT_EQ(run({"check-config"}, out, err), 0) << err;
  EXPECT_EQ(count_of(out + err, warning), 1u) << out << err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mb
