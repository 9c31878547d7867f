// File: auth/sasl.cpp — SASL message builders, the bearer error challenge, the mechanism
// factory and the choice of mechanism (in the one order of auth/sasl.h).
#include "auth/sasl.h"

#include "auth/redact.h"
#include "core/ascii.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

namespace mb::sasl {
namespace {

constexpr char kSoh = '\x01';
constexpr size_t kFieldMax = 200;  // bound on server text quoted in a message

// RFC 5801 saslname: ',' and '=' are escaped so they cannot end the "a=" field.
std::string gs2_escape(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out.push_back(c);
  }
  return out;
}

std::string json_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return "";
  std::string v = it->is_string() ? it->get<std::string>() : it->dump();
  return excerpt(v);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

const std::vector<std::string>& ranking(CredentialKind kind) {
  static const std::vector<std::string> kToken{"XOAUTH2", "OAUTHBEARER"};  // sasl.h: the one order
  static const std::vector<std::string> kPassword{"PLAIN", "LOGIN"};
  return kind == CredentialKind::kToken ? kToken : kPassword;
}

const char* kind_name(CredentialKind kind) {
  return kind == CredentialKind::kToken ? "an OAuth token" : "a password";
}

Status refusal(std::string message) { return Status(ErrorKind::kConfig, std::move(message)); }

}  // namespace

std::string without_secret(std::string_view text, std::string_view secret) {
  if (secret.empty()) return std::string(text);
  // Also its base64 at any alignment, and any credential message (auth/redact.h).
  redact::Patterns patterns;
  patterns.add_secret(secret, /*literal=*/true);
  return redact::scrub(text, {&patterns});
}

std::string excerpt(std::string_view text, std::string_view secret) {
  std::string clean = without_secret(text, secret);
  text = clean;
  std::string out;
  for (char c : text.substr(0, kFieldMax)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F ? c : '?');
  }
  if (text.size() > kFieldMax) out += "...";
  return out;
}

std::string plain_message(std::string_view authzid, std::string_view user,
                          std::string_view password) {
  std::string m;
  m.reserve(authzid.size() + user.size() + password.size() + 2);
  m.append(authzid).push_back('\0');
  m.append(user).push_back('\0');
  m.append(password);
  return m;
}

std::string xoauth2_message(std::string_view user, std::string_view token) {
  std::string m = "user=";
  m.append(user).push_back(kSoh);
  m.append("auth=Bearer ").append(token);
  m.push_back(kSoh);
  m.push_back(kSoh);
  return m;
}

std::string oauthbearer_message(std::string_view user, std::string_view host, uint16_t port,
                                std::string_view token) {
  std::string m = "n,a=" + gs2_escape(user) + ",";
  m.push_back(kSoh);
  if (!host.empty()) m.append("host=").append(host).push_back(kSoh);
  if (port != 0) m.append("port=" + std::to_string(port)).push_back(kSoh);
  m.append("auth=Bearer ").append(token);
  m.push_back(kSoh);
  m.push_back(kSoh);
  return m;
}

std::optional<BearerError> parse_bearer_error(std::string_view json) {
  auto j = nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  BearerError e;
  e.status = json_field(j, "status");
  e.schemes = json_field(j, "schemes");
  e.scope = json_field(j, "scope");
  e.openid_configuration = json_field(j, "openid-configuration");
  return e;
}

std::string describe(const BearerError& e) {
  std::string out = "token rejected";
  std::string sep = ": ";
  if (!e.status.empty()) out += sep + "status " + e.status, sep = ", ";
  if (!e.scope.empty()) out += sep + "scope " + e.scope, sep = ", ";
  if (!e.openid_configuration.empty()) out += sep + "see " + e.openid_configuration;
  return out;
}

Status bearer_failure(std::string_view challenge, std::string_view token) {
  // A server that echoes the token must not put it into our message; "<redacted>" keeps a
  // JSON string valid.
  std::string clean = without_secret(challenge, token);
  auto e = parse_bearer_error(clean);
  std::string text = e ? describe(*e)
                       : "token rejected (the server's error challenge is not JSON: " +
                             excerpt(clean) + ")";
  return Status(ErrorKind::kAuth, std::move(text), ErrorScope::kMailbox);
}

Result<std::unique_ptr<Mechanism>> make_mechanism(std::string_view name, const Credentials& c) {
  std::string n = ascii_upper(name);
  const auto& fitting = ranking(c.kind);
  if (std::find(fitting.begin(), fitting.end(), n) == fitting.end()) {
    const auto& other = ranking(c.kind == CredentialKind::kToken ? CredentialKind::kPassword
                                                                   : CredentialKind::kToken);
    bool known = std::find(other.begin(), other.end(), n) != other.end();
    return refusal("SASL mechanism " + n + (known ? std::string(" does not work with ") +
                                                        kind_name(c.kind)
                                                  : std::string(" is not supported")));
  }
  if (n == "PLAIN") return make_plain(c);
  if (n == "LOGIN") return make_login(c);
  if (n == "XOAUTH2") return make_xoauth2(c);
  return make_oauthbearer(c);
}

Result<std::string> choose_mechanism(const std::vector<std::string>& server_mechs,
                                     CredentialKind kind, const Preferences& prefs) {
  std::set<std::string> server;
  for (const auto& m : server_mechs) server.insert(ascii_upper(m));
  std::vector<std::string> offered(server.begin(), server.end());
  if (server.empty()) return refusal("the server offers no SASL mechanism");
  std::vector<std::string> ours;
  for (const auto& m : ranking(kind)) {
    bool allowed = prefs.allowed.empty() ||
                   std::any_of(prefs.allowed.begin(), prefs.allowed.end(),
                               [&](const std::string& a) { return ascii_upper(a) == m; });
    if (allowed) ours.push_back(m);
  }
  auto common =
      std::find_if(ours.begin(), ours.end(), [&](const auto& m) { return server.count(m) > 0; });
  if (common == ours.end()) {
    const auto& oauth = ranking(CredentialKind::kToken);
    bool wants_token = std::any_of(oauth.begin(), oauth.end(), [&](const auto& m) {
      return server.count(m) > 0;
    });
    if (kind == CredentialKind::kPassword && wants_token) {
      return refusal("the server offers only " + join(offered) +
                     ", and its OAuth mechanisms need a token, which this mailbox lacks: it "
                     "signs in with a password (auth = password)");
    }
    return refusal("no SASL mechanism in common: the server offers " + join(offered) +
                   "; with " + kind_name(kind) + " we can use " +
                   (ours.empty() ? std::string("none (all excluded by configuration)")
                                 : join(ours)));
  }
  if (kind == CredentialKind::kPassword && !prefs.tls && !prefs.plaintext_allowed) {
    return refusal("SASL " + *common +
                   " would send the password over a connection that is not encrypted; use "
                   "security = tls or starttls (or write security = none explicitly)");
  }
  return *common;
}

Result<std::string> choose_mechanism(const Protocol& protocol,
                                     const std::vector<std::string>& server_mechs,
                                     CredentialKind kind, Preferences prefs) {
  const auto& used =
      kind == CredentialKind::kToken ? protocol.token_mechanisms : protocol.password_mechanisms;
  if (prefs.allowed.empty()) prefs.allowed.assign(used.begin(), used.end());
  auto chosen = choose_mechanism(server_mechs, kind, prefs);
  if (chosen.ok() || kind != CredentialKind::kToken || protocol.unlisted_token_mechanism.empty())
    return chosen;
  const auto& oauth = ranking(CredentialKind::kToken);
  bool listed = std::any_of(server_mechs.begin(), server_mechs.end(), [&](const auto& m) {
    return std::find(oauth.begin(), oauth.end(), ascii_upper(m)) != oauth.end();
  });
  if (listed) return chosen;
  return std::string(protocol.unlisted_token_mechanism);
}

}  // namespace mb::sasl
