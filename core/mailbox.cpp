// File: core/mailbox.cpp
#include "core/mailbox.h"

namespace mb {

std::string PostAction::to_string() const {
  switch (kind) {
    case Kind::kMarkRead: return "mark-read";
    case Kind::kDelete: return "delete";
    case Kind::kMove: return "move:" + folder;
    case Kind::kLeave: return "leave";
    default: return "leave";
  }
}

}  // namespace mb
