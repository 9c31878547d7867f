// File: cli/json_output.h — what the sub-commands' --json output shares: the one JSON type
// (keys in the order written) and null for a text that is not there.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mb::cli {

using json = nlohmann::ordered_json;

// "" → null, so that a missing value reads as missing rather than as an empty string.
inline json null_if_empty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

}  // namespace mb::cli
