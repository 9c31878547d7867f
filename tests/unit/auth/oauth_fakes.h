// File: tests/unit/auth/oauth_fakes.h — test doubles for the OAuth unit tests: a scripted
// HttpClient that records every request, a form-body decoder, and a throw-away RSA
// certificate made with OpenSSL.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/http.h"

namespace mb::testing {

// Answers requests from a script, in order; when the script is empty, `fallback` answers.
class FakeHttp final : public HttpClient {
 public:
  Result<HttpResponse> send(const HttpRequest& request) override {
    std::lock_guard lk(mu_);
    requests.push_back(request);
    if (script.empty()) return fallback;
    Result<HttpResponse> r = script.front();
    script.pop_front();
    return r;
  }

  void reply(int status, std::string body, HttpHeaders headers = {}) {
    script.push_back(HttpResponse{status, std::move(headers), std::move(body)});
  }
  void fail(Status st) { script.push_back(std::move(st)); }

  std::deque<Result<HttpResponse>> script;
  Result<HttpResponse> fallback = Status(ErrorKind::kInternal, "the fake has no more replies");
  std::vector<HttpRequest> requests;

 private:
  std::mutex mu_;
};

inline std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// application/x-www-form-urlencoded → name → value (a repeated name keeps the last value,
// and is counted in `repeats` so a test can insist on none).
inline std::map<std::string, std::string> form_fields(const std::string& body, int* repeats = nullptr) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size() && !body.empty()) {
    size_t amp = std::min(body.find('&', pos), body.size());
    std::string pair = body.substr(pos, amp - pos);
    size_t eq = pair.find('=');
    std::string name = url_decode(pair.substr(0, eq));
    if (out.count(name) && repeats) ++*repeats;
    out[name] = eq == std::string::npos ? "" : url_decode(pair.substr(eq + 1));
    pos = amp + 1;
  }
  return out;
}

// A self-signed RSA-2048 certificate and its key, as one PEM.
struct TestCert {
  std::string cert_pem, key_pem;
  std::string pem() const { return cert_pem + key_pem; }
};

inline TestCert make_test_cert(const char* cn = "mailbridge-test") {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  auto to_string = [](auto write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<size_t>(n));
    BIO_free(b);
    return s;
  };
  TestCert out;
  out.cert_pem = to_string([&](BIO* b) { PEM_write_bio_X509(b, x); });
  out.key_pem = to_string([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

// A file under the test's temporary directory holding `content` (0600).
inline std::string write_temp_file(const std::string& name, const std::string& content) {
  auto dir = std::filesystem::temp_directory_path() / ("mb_oauth_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream(path) << content;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path.string();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace mb::testing
