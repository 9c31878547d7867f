// File: connectors/ews/ews_autodiscover.cpp — SOAP and POX Autodiscover (ews_autodiscover.h).
#include "connectors/ews/ews_autodiscover.h"

#include <deque>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "auth/base64.h"
#include "auth/token_cache.h"
#include "connectors/ews/ews_soap.h"
#include "core/ascii.h"
#include "core/http_curl.h"

namespace mb::ews {
namespace {

constexpr std::string_view kAutodiscoverNs = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
constexpr std::string_view kPoxResponseSchema =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

const char* kind_name(AutodiscoverKind k) { return k == AutodiscoverKind::kSoap ? "SOAP" : "POX"; }

// The service a redirect's URL names by its file extension (.svc SOAP, .xml POX), else
// the one that was asked.
AutodiscoverKind kind_of(std::string_view url, AutodiscoverKind asked) {
  std::string path = ascii_lower(url.substr(0, url.find_first_of("?#")));
  if (path.ends_with(".svc")) return AutodiscoverKind::kSoap;
  if (path.ends_with(".xml")) return AutodiscoverKind::kPox;
  return asked;
}

bool is_https(std::string_view url) {
  auto u = parse_url(url);
  return u.ok() && u->scheme == "https" && !u->host.empty();
}

Result<pugi::xml_document*> load(pugi::xml_document& doc, std::string_view body, const char* what) {
  if (!doc.load_buffer(body.data(), body.size())) {
    return Status(ErrorKind::kProtocol, fmt::format("{} autodiscover answer is not XML", what),
                  ErrorScope::kConnection);
  }
  return &doc;
}

// Walks `path` of local names from `node`.
pugi::xml_node at(pugi::xml_node node, std::initializer_list<std::string_view> path) {
  for (std::string_view name : path) node = child(node, name);
  return node;
}

// The domain of an address, lower case; "" without one.
std::string domain_of(std::string_view email) {
  size_t at_sign = email.rfind('@');
  if (at_sign == std::string_view::npos || at_sign + 1 >= email.size()) return "";
  return ascii_lower(email.substr(at_sign + 1));
}

// One search: the queue of candidates, the steps taken, the hops left.
class Search {
 public:
  Search(const AutodiscoverOptions& o, const SignIn& sign_in, const HttpFactory& http)
      : o_(o), sign_in_(sign_in), email_(o.email) {
    HttpOptions h;
    h.tls = o.tls;
    h.timeouts = o.timeouts;
    h.connect_to = o.connect_to;
    std::optional<NtlmCredentials> ntlm;
    if (o.method == SignInMethod::kNtlm) ntlm = NtlmCredentials{.user = o.user, .password = sign_in.password};
    http_ = http ? http(h, std::move(ntlm)) : make_curl_http_client(h, std::move(ntlm));
  }

  Discovery run();

 private:
  Result<HttpResponse> post(const Candidate& c);
  // Tries one candidate; true when the search is over (found, or stopped for good).
  bool attempt(const Candidate& c, Discovery& d);
  bool hop(Discovery& d, const std::string& why);
  Status failure(const Discovery& d) const;

  const AutodiscoverOptions& o_;
  const SignIn& sign_in_;
  std::unique_ptr<HttpClient> http_;
  std::string email_;
  std::deque<Candidate> queue_;
  int hops_ = 0;
  bool refused_ = false;   // a 401 somewhere
  bool answered_ = false;  // some server answered over HTTPS
  Status stopped_;         // a reason to stop before the queue is empty
};

Result<HttpResponse> Search::post(const Candidate& c) {
  HttpRequest req;
  req.method = "POST";
  req.url = c.url;
  req.repeatable = true;  // a read
  req.body = c.kind == AutodiscoverKind::kSoap ? soap_autodiscover_request(c.url, email_)
                                               : pox_autodiscover_request(email_);
  req.headers = {{"Content-Type", "text/xml; charset=utf-8"}, {"X-AnchorMailbox", email_}};
  if (c.kind == AutodiscoverKind::kSoap) {
    req.headers.emplace_back("SOAPAction", std::string(kAutodiscoverNs) + "/Autodiscover/GetUserSettings");
  }
  if (o_.method == SignInMethod::kBasic) {
    req.headers.emplace_back("Authorization", "Basic " + base64_encode(o_.user + ":" + sign_in_.password));
  }
  if (o_.method != SignInMethod::kBearer) return http_->send(req);
  std::optional<HttpResponse> out;
  Status s = sign_in_.with_token([&](const std::string& token) -> Status {
    HttpRequest with = req;
    with.headers.emplace_back("Authorization", "Bearer " + token);
    auto r = http_->send(with);
    if (!r.ok()) return r.status();
    if (r->status == 401) return token_rejected_status("autodiscover: access token refused (HTTP 401)");
    out = std::move(*r);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return std::move(*out);
}

bool Search::hop(Discovery& d, const std::string& why) {
  if (++hops_ <= o_.max_hops) return true;
  d.steps.back().outcome += "; not followed: more than " + std::to_string(o_.max_hops) + " redirects";
  stopped_ = Status(ErrorKind::kConfig, "autodiscover stopped after " + std::to_string(o_.max_hops) +
                                            " redirects (" + why + ")");
  return false;
}

bool Search::attempt(const Candidate& c, Discovery& d) {
  d.steps.push_back({c.url, kind_name(c.kind), false, ""});
  auto r = post(c);
  AutodiscoverStep& step = d.steps.back();
  if (!r.ok()) {
    if (r.status().kind() == ErrorKind::kCancelled) {
      stopped_ = r.status();
      step.outcome = "cancelled";
      return true;
    }
    if (r.status().kind() == ErrorKind::kAuth) refused_ = true;
    step.outcome = r.status().message();
    return false;
  }
  answered_ = true;
  const int st = r->status;
  if (st == 301 || st == 302 || st == 307 || st == 308) {
    std::string to = r->header("Location").value_or("");
    if (!is_https(to)) {
      step.outcome = fmt::format("HTTP {} to \"{}\": not followed (https:// only)", st, to);
      return false;
    }
    step.outcome = fmt::format("HTTP {}: redirected to {}", st, to);
    if (!hop(d, step.outcome)) return true;
    queue_.push_front({kind_of(to, c.kind), to});
    return false;
  }
  if (st == 401) {
    refused_ = true;
    auto offered = r->header("WWW-Authenticate");
    step.outcome = "HTTP 401: the credentials were refused" + (offered ? "; the server offers " + *offered : "");
    return false;
  }
  if (st != 200) {
    step.outcome = fmt::format("HTTP {}", st);
    return false;
  }
  auto a = c.kind == AutodiscoverKind::kSoap ? parse_soap_autodiscover(r->body, o_.prefer_internal)
                                             : parse_pox_autodiscover(r->body, o_.prefer_internal);
  if (!a.ok()) {
    step.outcome = a.status().message();
    return false;
  }
  switch (a->kind) {
    case AutodiscoverAnswer::Kind::kUrl:
      if (!is_https(a->value)) {
        step.outcome = a->setting + " \"" + a->value + "\" is not an https:// URL";
        return false;
      }
      step.ok = true;
      step.outcome = a->setting + " " + a->value;
      d.ews_url = a->value;
      return true;
    case AutodiscoverAnswer::Kind::kRedirectUrl:
      if (!is_https(a->value)) {
        step.outcome = "redirect to \"" + a->value + "\": not followed (https:// only)";
        return false;
      }
      step.outcome = "redirected to " + a->value;
      if (!hop(d, step.outcome)) return true;
      queue_.push_front({kind_of(a->value, c.kind), a->value});
      return false;
    case AutodiscoverAnswer::Kind::kRedirectAddress: {
      step.outcome = "redirected to the address " + a->value;
      if (!hop(d, step.outcome)) return true;
      email_ = a->value;
      auto next = autodiscover_candidates(email_);
      queue_.assign(next.begin(), next.end());
      return false;
    }
    case AutodiscoverAnswer::Kind::kError:
      step.outcome = a->value;
      return false;
  }
  return false;
}

Status Search::failure(const Discovery& d) const {
  std::string list;
  for (size_t i = 0; i < d.steps.size(); ++i) {
    const auto& s = d.steps[i];
    list += fmt::format("{}{}. {} {}: {}", i ? "; " : "", i + 1, s.kind, s.url, s.outcome);
  }
  std::string head = stopped_.ok() ? "autodiscover found no EWS URL for " + o_.email
                                   : stopped_.message() + " for " + o_.email;
  std::string msg = head + (list.empty() ? "" : " (" + list + ")") +
                    "; set `endpoint` to the EWS URL (https://<server>/EWS/Exchange.asmx) "
                    "— SCP lookup in Active Directory is not done";
  ErrorKind kind = !stopped_.ok() ? stopped_.kind()
                   : refused_     ? ErrorKind::kAuth
                   : !answered_   ? ErrorKind::kNetwork
                                  : ErrorKind::kConfig;
  return Status(kind, msg, kind == ErrorKind::kAuth ? ErrorScope::kMailbox : ErrorScope::kConnection);
}

Discovery Search::run() {
  Discovery d;
  auto first = autodiscover_candidates(email_);
  if (first.empty()) {
    d.status = Status(ErrorKind::kConfig, "autodiscover needs an email address, not \"" + email_ + "\"");
    return d;
  }
  queue_.assign(first.begin(), first.end());
  while (!queue_.empty()) {
    Candidate c = queue_.front();
    queue_.pop_front();
    if (attempt(c, d)) break;
  }
  d.status = d.ews_url.empty() ? failure(d) : Status::Ok();
  for (const auto& s : d.steps) spdlog::debug("autodiscover {}: {} {}: {}", o_.email, s.kind, s.url, s.outcome);
  return d;
}

}  // namespace

AutodiscoverOptions autodiscover_options(const ClientOptions& client) {
  AutodiscoverOptions a;
  a.email = client.mailbox;
  a.method = client.method;
  a.user = client.user;
  a.tls = client.tls;
  a.timeouts = client.timeouts;
  return a;
}

std::vector<Candidate> autodiscover_candidates(std::string_view email) {
  const std::string d = domain_of(email);
  if (d.empty()) return {};
  return {{AutodiscoverKind::kSoap, "https://autodiscover." + d + "/autodiscover/autodiscover.svc"},
          {AutodiscoverKind::kSoap, "https://" + d + "/autodiscover/autodiscover.svc"},
          {AutodiscoverKind::kPox, "https://autodiscover." + d + "/autodiscover/autodiscover.xml"},
          {AutodiscoverKind::kPox, "https://" + d + "/autodiscover/autodiscover.xml"}};
}

std::string soap_autodiscover_request(std::string_view url, std::string_view email) {
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
      "<soap:Envelope xmlns:a=\"{0}\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Header>"
      "<a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>"
      "<wsa:Action>{0}/Autodiscover/GetUserSettings</wsa:Action><wsa:To>{1}</wsa:To>"
      "</soap:Header><soap:Body><a:GetUserSettingsRequestMessage xmlns:a=\"{0}\"><a:Request>"
      "<a:Users><a:User><a:Mailbox>{2}</a:Mailbox></a:User></a:Users><a:RequestedSettings>"
      "<a:Setting>ExternalEwsUrl</a:Setting><a:Setting>InternalEwsUrl</a:Setting>"
      "</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>",
      kAutodiscoverNs, xml_escape(url), xml_escape(email));
}

std::string pox_autodiscover_request(std::string_view email) {
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover "
      "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">"
      "<Request><EMailAddress>{}</EMailAddress><AcceptableResponseSchema>{}"
      "</AcceptableResponseSchema></Request></Autodiscover>",
      xml_escape(email), kPoxResponseSchema);
}

Result<AutodiscoverAnswer> parse_soap_autodiscover(std::string_view body, bool prefer_internal) {
  pugi::xml_document doc;
  MB_RETURN_IF_ERROR(load(doc, body, "SOAP").status());
  pugi::xml_node envelope = doc.document_element();
  pugi::xml_node response = at(envelope, {"Body", "GetUserSettingsResponseMessage", "Response"});
  if (!response) {
    pugi::xml_node fault = at(envelope, {"Body", "Fault"});
    if (fault) return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kError, "SOAP fault: " + child_text(fault, "faultstring"), ""};
    return Status(ErrorKind::kProtocol, "SOAP autodiscover answer without GetUserSettingsResponseMessage",
                  ErrorScope::kConnection);
  }
  std::string code = child_text(response, "ErrorCode");
  if (code != "NoError") {
    return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kError, code + ": " + child_text(response, "ErrorMessage"), ""};
  }
  pugi::xml_node user = at(response, {"UserResponses", "UserResponse"});
  std::string user_code = child_text(user, "ErrorCode");
  std::string target = child_text(user, "RedirectTarget");
  if (user_code == "RedirectAddress") return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kRedirectAddress, target, ""};
  if (user_code == "RedirectUrl") return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kRedirectUrl, target, ""};
  if (user_code != "NoError") {
    return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kError,
                              (user_code.empty() ? std::string("no UserResponse") : user_code) + ": " +
                                  child_text(user, "ErrorMessage"), ""};
  }
  std::string external;
  std::string internal;
  for (pugi::xml_node s : child(user, "UserSettings").children()) {
    if (local_name(s) != "UserSetting") continue;
    std::string name = child_text(s, "Name");
    if (name == "ExternalEwsUrl") external = child_text(s, "Value");
    if (name == "InternalEwsUrl") internal = child_text(s, "Value");
  }
  const bool use_internal = !internal.empty() && (prefer_internal || external.empty());
  if (use_internal) return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kUrl, internal, "InternalEwsUrl"};
  if (!external.empty()) return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kUrl, external, "ExternalEwsUrl"};
  return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kError, "no ExternalEwsUrl or InternalEwsUrl in the answer", ""};
}

Result<AutodiscoverAnswer> parse_pox_autodiscover(std::string_view body, bool prefer_internal) {
  pugi::xml_document doc;
  MB_RETURN_IF_ERROR(load(doc, body, "POX").status());
  pugi::xml_node root = doc.document_element();
  pugi::xml_node response = child(root, "Response");
  if (local_name(root) != "Autodiscover" || !response) {
    return Status(ErrorKind::kProtocol, "POX autodiscover answer without Autodiscover/Response",
                  ErrorScope::kConnection);
  }
  if (pugi::xml_node error = child(response, "Error")) {
    return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kError,
                              "error " + child_text(error, "ErrorCode") + ": " + child_text(error, "Message"), ""};
  }
  pugi::xml_node account = child(response, "Account");
  std::string action = child_text(account, "Action");
  if (action == "redirectAddr") return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kRedirectAddress, child_text(account, "RedirectAddr"), ""};
  if (action == "redirectUrl") return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kRedirectUrl, child_text(account, "RedirectUrl"), ""};
  std::string found[2];  // EXPR (external), EXCH (internal)
  std::string names[2];
  for (pugi::xml_node p : account.children()) {
    if (local_name(p) != "Protocol") continue;
    std::string type = child_text(p, "Type");
    int i = type == "EXPR" ? 0 : type == "EXCH" ? 1 : -1;
    if (i < 0 || !found[i].empty()) continue;
    found[i] = child_text(p, "EwsUrl");
    names[i] = type + " EwsUrl";
    if (found[i].empty()) {
      found[i] = child_text(p, "ASUrl");
      names[i] = type + " ASUrl";
    }
  }
  const int order[2] = {prefer_internal ? 1 : 0, prefer_internal ? 0 : 1};
  for (int i : order) {
    if (!found[i].empty()) return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kUrl, found[i], names[i]};
  }
  return AutodiscoverAnswer{AutodiscoverAnswer::Kind::kError,
                            "no EXPR or EXCH protocol with an EwsUrl in the answer (Action " +
                                (action.empty() ? std::string("missing") : action) + ")", ""};
}

Discovery autodiscover(const AutodiscoverOptions& options, const SignIn& sign_in, const HttpFactory& http) {
  Search search(options, sign_in, http);
  return search.run();
}

}  // namespace mb::ews
