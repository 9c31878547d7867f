// File: bench/maildir_mailbox.cpp — a read-only Mailbox over a local Maildir (see the header).
#include "bench/maildir_mailbox.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <system_error>
#include <vector>

namespace mb {
namespace {

namespace fs = std::filesystem;

std::string to_crlf(const std::string& in) {
  std::string out;
  out.reserve(in.size() + in.size() / 40);
  char prev = 0;
  for (char c : in) {
    if (c == '\n' && prev != '\r') out.push_back('\r');
    out.push_back(c);
    prev = c;
  }
  return out;
}

class MaildirMailbox final : public Mailbox {
 public:
  explicit MaildirMailbox(std::string dir) : dir_(std::move(dir)) {}

  ConnectionReport test_connection() override {
    ConnectionReport report;
    std::error_code ec;
    bool ok = fs::is_directory(dir_, ec);
    report.steps.push_back({"open-folder", ok, dir_});
    if (!ok) report.status = Status(ErrorKind::kNotFound, "no Maildir at " + dir_);
    return report;
  }

  Result<Pending> list_pending(size_t limit, const std::string& state) override {
    if (files_.empty()) MB_RETURN_IF_ERROR(scan());
    Pending p;
    for (auto it = files_.upper_bound(state); it != files_.end(); ++it) {
      if (p.keys.size() == limit) {
        p.more = true;
        break;
      }
      p.keys.push_back(it->first);
    }
    p.next_state = p.keys.empty() ? state : p.keys.back();
    return p;
  }

  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override {
    for (const auto& key : keys) {
      auto it = files_.find(key);
      Result<std::string> raw = it == files_.end()
          ? Result<std::string>(Status(ErrorKind::kNotFound, "no message " + key,
                                       ErrorScope::kMessage))
          : read(it->second);
      MB_RETURN_IF_ERROR(cb(key, std::move(raw)));
    }
    return Status::Ok();
  }

  Status apply(const std::vector<std::string>&, const PostAction& action) override {
    if (action.kind == PostAction::Kind::kLeave) return Status::Ok();
    return Status(ErrorKind::kRejected, "the benchmark's Maildir is read-only");
  }

  Capabilities capabilities() const override { return {}; }
  void close() override {}

 private:
  Status scan() {
    std::error_code ec;
    for (const char* sub : {"cur", "new"}) {
      fs::path folder = fs::path(dir_) / sub;
      if (!fs::is_directory(folder, ec)) continue;
      for (const auto& entry : fs::directory_iterator(folder, ec)) {
        if (entry.is_regular_file()) files_[entry.path().filename().string()] = entry.path();
      }
    }
    if (ec) return Status(ErrorKind::kInternal, "cannot list " + dir_ + ": " + ec.message());
    return Status::Ok();
  }

  static Result<std::string> read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      return Status(ErrorKind::kInternal, "cannot read " + path.string(), ErrorScope::kMessage);
    }
    return to_crlf(data);
  }

  std::string dir_;
  std::map<std::string, fs::path> files_;
};

}  // namespace

std::unique_ptr<Mailbox> make_maildir_mailbox(const std::string& dir) {
  return std::make_unique<MaildirMailbox>(dir);
}

}  // namespace mb
