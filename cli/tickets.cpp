// File: cli/tickets.cpp — `mailbridge tickets list|show`: the tickets and their notes, as a
// table or as the JSON of SPEC §5.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/json_output.h"
#include "cli/terminal.h"
#include "core/store.h"

namespace mb::cli {
namespace {

// Ordered, so that the JSON reads in the order of SPEC §5 (id first).
// `content_id` (without angle brackets, null when none) and `inline` let a consumer put
// inline images back where the HTML refers to them (cid:).
json attachment_json(const StoredAttachment& a) {
  return {{"filename", a.filename},
          {"content_type", a.content_type},
          {"content_id", null_if_empty(a.content_id)},
          {"inline", a.inline_part},
          {"size", a.size},
          {"sha256", a.sha256}};
}

json note_json(const Note& n) {
  json atts = json::array();
  for (const auto& a : n.attachments) atts.push_back(attachment_json(a));
  return {{"id", n.id},
          {"kind", n.kind},
          {"author", n.author},
          {"author_name", null_if_empty(n.author_name)},
          {"text", n.text},
          {"html", n.html},
          {"message_id", n.message_id},
          {"attachments", atts},
          {"dropped_attachments", n.dropped_attachments},
          {"in_reply_to", n.in_reply_to ? json(*n.in_reply_to) : json(nullptr)},
          {"created_at", n.created_at}};
}

// `notes` is the count in a list and the notes themselves in `show`.
json ticket_json(const Ticket& t, bool with_notes) {
  json j = {{"id", t.id},
            {"project", t.project},
            {"subject", t.subject},
            {"status", t.status},
            {"source", t.source},
            {"requester", t.requester},
            {"requester_name", null_if_empty(t.requester_name)},
            {"created_at", t.created_at},
            {"notes", t.note_count}};
  if (with_notes) {
    json notes = json::array();
    for (const auto& n : t.notes) notes.push_back(note_json(n));
    j["notes"] = notes;
  }
  return j;
}

// Cuts at a UTF-8 character boundary so that a table never shows half a character.
std::string clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

int run_tickets_list(Context& ctx, bool as_json) {
  auto opened = open_config_and_store(ctx);
  if (!opened.ok()) return exit_code(opened.status());
  auto tickets = opened->store->list_tickets();
  if (!tickets.ok()) return fail(ctx, tickets.status());
  if (as_json) {
    json arr = json::array();
    for (const auto& t : *tickets) arr.push_back(ticket_json(t, false));
    ctx.out << safe_dump(arr, 2) << "\n";
    return 0;
  }
  if (tickets->empty()) {
    ctx.out << "no tickets\n";
    return 0;
  }
  ctx.out << fmt::format("{:>6}  {:<10} {:<8} {:<20} {:>5}  {:<28} {}\n", "ID", "PROJECT",
                         "STATUS", "CREATED", "NOTES", "REQUESTER", "SUBJECT");
  for (const auto& t : *tickets) {
    ctx.out << fmt::format("{:>6}  {:<10} {:<8} {:<20} {:>5}  {:<28} {}\n", t.id,
                           clip(printable(t.project), 10), t.status, t.created_at, t.note_count,
                           clip(printable(t.requester), 28), clip(printable(t.subject), 70));
  }
  return 0;
}

// Who, as "Name <address>" or the address alone, on one line.
std::string who(const std::string& name, const std::string& address) {
  return printable(name.empty() ? address : name + " <" + address + ">");
}

// The body keeps its lines; ctx.out escapes the control characters in them.
void print_note(Context& ctx, const Note& n) {
  std::string author = who(n.author_name, n.author);
  ctx.out << fmt::format("\n--- note {} · {} · {} · {}", n.id, n.kind, author, n.created_at);
  if (n.in_reply_to) ctx.out << fmt::format(" · reply to note {}", *n.in_reply_to);
  ctx.out << " ---\n";
  if (!n.message_id.empty()) ctx.out << "Message-ID: " << printable(n.message_id) << "\n";
  if (!n.text.empty()) {
    ctx.out << n.text << (n.text.back() == '\n' ? "" : "\n");
  } else if (!n.html.empty()) {
    ctx.out << fmt::format("(HTML only, {} bytes)\n", n.html.size());
  }
  for (const auto& a : n.attachments) {
    std::string where = a.inline_part ? ", inline" : "";
    if (!a.content_id.empty()) where += ", cid " + printable(a.content_id);
    ctx.out << fmt::format("  attachment: {} ({}, {} bytes{}, sha256 {})\n",
                           printable(a.filename), printable(a.content_type), a.size, where,
                           a.sha256);
  }
  for (const auto& d : n.dropped_attachments) {
    ctx.out << fmt::format("  dropped (restricted type): {}\n", printable(d));
  }
}

int run_show(Context& ctx, int64_t id, bool as_json) {
  auto opened = open_config_and_store(ctx);
  if (!opened.ok()) return exit_code(opened.status());
  auto ticket = opened->store->get_ticket(id);
  if (!ticket.ok()) return fail(ctx, ticket.status());
  if (!ticket->has_value()) {
    print_error(ctx, fmt::format("no ticket {}", id));
    return 1;
  }
  const Ticket& t = **ticket;
  if (as_json) {
    ctx.out << safe_dump(ticket_json(t, true), 2) << "\n";
    return 0;
  }
  ctx.out << fmt::format("Ticket {} [{}] {}\n", t.id, printable(t.project), printable(t.subject));
  ctx.out << fmt::format("Status: {}   Source: {}   Created: {}\n", t.status, t.source,
                         t.created_at);
  ctx.out << "Requester: " << who(t.requester_name, t.requester) << "\n";
  if (!t.mailbox.empty()) ctx.out << "Mailbox: " << printable(t.mailbox) << "\n";
  for (const auto& n : t.notes) print_note(ctx, n);
  return 0;
}

}  // namespace

void add_tickets(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("tickets", "the tickets and their notes");
  cmd->require_subcommand(1);
  auto json_list = std::make_shared<bool>(false);
  auto* list = cmd->add_subcommand("list", "list the tickets");
  list->add_flag("--json", *json_list, "print JSON");
  list->callback([&ctx, json_list] {
    ctx.action = [&ctx, json_list] { return run_tickets_list(ctx, *json_list); };
  });
  auto json_show = std::make_shared<bool>(false);
  auto id = std::make_shared<int64_t>(0);
  auto* show = cmd->add_subcommand("show", "show one ticket with its notes");
  show->add_option("ID", *id, "ticket id")->required();
  show->add_flag("--json", *json_show, "print JSON");
  show->callback([&ctx, json_show, id] {
    ctx.action = [&ctx, json_show, id] { return run_show(ctx, *id, *json_show); };
  });
}

}  // namespace mb::cli
