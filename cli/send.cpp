// File: cli/send.cpp — `mailbridge send --ticket ID --to ADDR … --subject S --body-file F`:
// queues a tracked email about a ticket in the outbox and prints its id. Sending is the
// outbox's job (`outbox flush`, `sync`, `run`).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/outbox.h"

namespace mb::cli {
namespace {

struct SendArgs {
  int64_t ticket = 0;
  std::vector<std::string> to;
  std::vector<std::string> cc;
  std::string subject;
  std::string body_file;
  std::string html_file;
  std::vector<std::string> attach;
  std::string user;
  std::string sender;
};

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorKind::kInvalidInput, "cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "Name <addr>" or a bare address.
Address parse_address(const std::string& text) {
  size_t open = text.rfind('<');
  if (open == std::string::npos || text.back() != '>') return {"", text};
  std::string name = text.substr(0, open);
  while (!name.empty() && name.back() == ' ') name.pop_back();
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
    name = name.substr(1, name.size() - 2);
  }
  return {name, text.substr(open + 1, text.size() - open - 2)};
}

Result<TrackedMail> build(const SendArgs& a) {
  TrackedMail m;
  m.ticket_id = a.ticket;
  m.sender = a.sender;
  m.user = a.user;
  for (const auto& t : a.to) m.to.push_back(parse_address(t));
  for (const auto& c : a.cc) m.cc.push_back(parse_address(c));
  m.subject = a.subject;
  auto body = slurp(a.body_file);
  if (!body.ok()) return body.status();
  m.text = std::move(*body);
  if (!a.html_file.empty()) {
    auto html = slurp(a.html_file);
    if (!html.ok()) return html.status();
    m.html = std::move(*html);
  }
  for (const auto& path : a.attach) {
    auto data = slurp(path);
    if (!data.ok()) return data.status();
    m.attachments.push_back(
        {std::filesystem::path(path).filename().string(), "", std::move(*data)});
  }
  return m;
}

int run_send(Context& ctx, const SendArgs& args) {
  auto cfg = load(ctx, false);
  if (!cfg.ok()) return exit_code(cfg.status());
  // The files and names given on the command line: what is wrong with them is a usage error.
  auto mail = build(args);
  if (!mail.ok()) return fail(ctx, mail.status(), Origin::kCommandLine);
  auto secret = tracking_secret(*cfg);
  if (!secret.ok()) return fail(ctx, secret.status());
  auto store = open_store(ctx, *cfg);
  if (!store.ok()) return exit_code(store.status());
  Outbox outbox(**store, *cfg, *secret, cli_outbox_options());
  auto row = outbox.queue_tracked(*mail);
  if (!row.ok()) return fail(ctx, row.status(), Origin::kCommandLine);
  ctx.out << row->id << "\n";
  return 0;
}

}  // namespace

void add_send(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SendArgs>();
  auto* cmd = app.add_subcommand("send", "queue a tracked email about a ticket; prints its id");
  cmd->add_option("--ticket", a->ticket, "the ticket it is about")->required();
  cmd->add_option("--to", a->to, "recipient (repeatable; \"Name <addr>\" or addr)")->required();
  cmd->add_option("--cc", a->cc, "copy recipient (repeatable)");
  cmd->add_option("--subject", a->subject, "subject (the tracking cookie is appended)")
      ->required();
  cmd->add_option("--body-file", a->body_file, "text body (UTF-8)")->required();
  cmd->add_option("--html-file", a->html_file, "HTML alternative (UTF-8)");
  cmd->add_option("--attach", a->attach, "file to attach (repeatable)");
  cmd->add_option("--user", a->user, "the technician it is sent for (a [[user]])");
  cmd->add_option("--sender", a->sender, "the [[sender]] (default: [tracking] sender)");
  cmd->callback([&ctx, a] { ctx.action = [&ctx, a] { return run_send(ctx, *a); }; });
}

}  // namespace mb::cli
