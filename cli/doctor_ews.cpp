// File: cli/doctor_ews.cpp — what `mailbridge doctor` says of an EWS mailbox (cli/doctor.h):
// for each failed step of its connection test (connectors/ews/ews_report.h: endpoint,
// sign-in, access, open-folder) the cause in an Exchange administrator's terms and the
// command that fixes it, with the account, mailbox and app filled in; and the doctor run of
// an EWS mailbox that signs in with a password (Basic or NTLM), which has no token to check.
#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/doctor.h"
#include "connectors/registry.h"
#include "core/connector_types.h"

namespace mb::cli::doctor {
namespace {

bool has(const Status& s, std::string_view text) {
  return s.message().find(text) != std::string::npos;
}

std::string host_of(const std::string& url) {
  std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  return rest.substr(0, rest.find('/'));
}

constexpr const char* kVdir = "Set-WebServicesVirtualDirectory -Identity \"<server>\\EWS (Default Web Site)\"";

std::string endpoint_fix(const EwsTarget& t, const Status& failure) {
  if (failure.kind() == ErrorKind::kTls) {
    return fmt::format("the certificate of {} is not trusted here: name the CA that issued it in "
                       "this [[mailbox]] (tls = {{ ca_file = \"corp-ca.pem\" }}) or add it to the "
                       "system store; Exchange's own self-signed certificate is never trusted",
                       host_of(t.endpoint));
  }
  return fmt::format("check that {} answers from this host (name, port, firewall, proxy) and is "
                     "the EWS URL: in the Exchange Management Shell, Get-WebServicesVirtualDirectory "
                     "| Format-List Server,InternalUrl,ExternalUrl",
                     host_of(t.endpoint));
}

std::string sign_in_fix(const EwsTarget& t, const Status& failure) {
  if (t.auth == AuthMethod::kOAuth2) {
    if (exchange_online_endpoint(t.endpoint)) {
      return fmt::format("Exchange Online refused the token of app {}: it needs the application "
                         "permission full_access_as_app (Office 365 Exchange Online) with admin "
                         "consent",
                         t.appid.empty() ? "<application id>" : t.appid);
    }
    return fmt::format("Exchange Server takes OAuth tokens only with hybrid modern "
                       "authentication: {} -OAuthAuthentication $true (with the hybrid "
                       "configuration's auth server); or sign in with auth = \"ntlm\"",
                       kVdir);
  }
  if (has(failure, "Basic is not enabled")) {
    return fmt::format("the EWS virtual directory does not take Basic: {} -BasicAuthentication "
                       "$true (then iisreset), or set auth = \"ntlm\" (Windows authentication)",
                       kVdir);
  }
  if (has(failure, "Windows authentication is not enabled")) {
    return fmt::format("the EWS virtual directory does not take NTLM: {} -WindowsAuthentication "
                       "$true (then iisreset)",
                       kVdir);
  }
  return fmt::format("Exchange refused the password of {}: check the secret `password` names, "
                     "that the account may sign in (not locked, not expired), and the form of "
                     "user ({}: DOMAIN\\name or the UPN)",
                     t.account, t.auth == AuthMethod::kNtlm ? "NTLM" : "Basic");
}

std::string forbidden_fix(const EwsTarget& t) {
  if (exchange_online_endpoint(t.endpoint)) {
    return fmt::format(
        "Exchange Online blocks EWS unless the tenant allows it: Get-OrganizationConfig | "
        "Format-List EwsEnabled,EwsAllowedAppIDs, then Set-OrganizationConfig -EwsEnabled $true "
        "-EwsAllowedAppIDs <the listed ids and {}> (the parameter replaces the whole list). EWS "
        "in Exchange Online ends on 1 April 2027: move this mailbox to type = \"graph\" with the "
        "same app registration",
        t.appid.empty() ? "this app's id" : t.appid);
  }
  return fmt::format("EWS is switched off for {} or for the organization: Set-CASMailbox "
                     "-Identity {} -EwsEnabled $true; Get-OrganizationConfig | Format-List "
                     "Ews* shows an EwsApplicationAccessPolicy or EwsAllowList that may leave "
                     "mailbridge out",
                     t.account, t.account);
}

std::string access_fix(const EwsTarget& t, const Status& failure) {
  if (has(failure, "HTTP 403")) return forbidden_fix(t);
  if (has(failure, "ErrorInvalidExchangeImpersonationHeaderData")) {
    return "app-only tokens need impersonation: set access = \"impersonation\"";
  }
  if (has(failure, "ErrorNonExistentMailbox")) {
    return fmt::format("Exchange has no mailbox {}: check `address` (or `user`); "
                       "Get-Mailbox -Identity {} shows it",
                       t.mailbox, t.mailbox);
  }
  if (has(failure, "ErrorImpersonateUserDenied")) {
    if (t.auth == AuthMethod::kOAuth2) {
      return fmt::format("app {} may not open {}: it needs full_access_as_app with admin "
                         "consent, and no application access policy or RBAC scope that "
                         "leaves the mailbox out",
                         t.appid.empty() ? "<application id>" : t.appid, t.mailbox);
    }
    return fmt::format(
        "give {} the ApplicationImpersonation role, limited to the help-desk mailboxes: "
        "New-ManagementScope -Name \"mailbridge mailboxes\" -RecipientRestrictionFilter "
        "\"PrimarySmtpAddress -eq '{}'\" ; New-ManagementRoleAssignment -Name \"mailbridge "
        "impersonation\" -Role ApplicationImpersonation -User {} -CustomRecipientWriteScope "
        "\"mailbridge mailboxes\"",
        t.account, t.mailbox, t.account);
  }
  if (t.access == MailboxAccess::kOwn) {
    return fmt::format("access = \"own\" opens the account's own mailbox: for {} set access = "
                       "\"delegate\" (with FullAccess) or \"impersonation\"",
                       t.mailbox);
  }
  return fmt::format("give {} full access to {}: Add-MailboxPermission -Identity {} -User {} "
                     "-AccessRights FullAccess -InheritanceType All -AutoMapping $false",
                     t.account, t.mailbox, t.mailbox, t.account);
}

std::string folder_fix(const EwsTarget& t, const Status& failure) {
  if (failure.kind() == ErrorKind::kThrottled) {
    return fmt::format("Exchange throttles {}: Get-ThrottlingPolicyAssociation -Identity {} "
                       "names its policy; a policy of its own with higher EWS limits: "
                       "New-ThrottlingPolicy, then Set-ThrottlingPolicyAssociation",
                       t.account, t.account);
  }
  if (has(failure, "ErrorFolderNotFound") || has(failure, "DistinguishedFolderId") ||
      has(failure, "schema validation")) {
    return fmt::format("folder = \"{}\" is not a folder EWS knows: use a distinguished folder "
                       "name such as \"inbox\"",
                       t.folder);
  }
  return "";
}

}  // namespace

std::string ews_fix(const EwsTarget& t, const std::string& step, const Status& failure) {
  if (step == "endpoint") return endpoint_fix(t, failure);
  if (step == "sign-in") return sign_in_fix(t, failure);
  if (step == "access") return access_fix(t, failure);
  if (step == "open-folder") return folder_fix(t, failure);
  return "";
}

EwsTarget ews_target(const MailboxConfig& m, const std::string& appid) {
  return {m.endpoint, m.auth, m.user, m.access, m.address.empty() ? m.user : m.address, m.folder,
          appid};
}

void add_ews_steps(Report& report, const ConnectionReport& cr, const EwsTarget& t) {
  for (const auto& s : cr.steps) {
    Step step{s.name, s.ok, s.detail, s.ok ? "" : ews_fix(t, s.name, cr.status)};
    report.add(std::move(step), exit_code(cr.status));
  }
}

Report diagnose_ews_password(const Config& cfg, const MailboxConfig& m, const Target& target) {
  Report report{.target = target, .steps = {}, .exit_code = 0};
  auto mbx = make_mailbox(m, cfg);
  if (!mbx.ok()) {
    report.add({"configure", false, mbx.status().message(), ""}, exit_code(mbx.status()));
    return report;
  }
  ConnectionReport cr = (*mbx)->test_connection();
  (*mbx)->close();
  add_ews_steps(report, cr, ews_target(m, ""));
  return report;
}

}  // namespace mb::cli::doctor
