// File: auth/internal/oauth_util.h — helpers shared by the OAuth files of auth/ (not API).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"

namespace mb::oauth_internal {

// True when the app signs in as itself (client credentials): flow "app-only", or an empty
// flow with a client secret or certificate configured (config.cpp may leave flow empty).
bool is_app_only(const AppConfig& app);

// base64url without padding (RFC 7515 §2), and its reverse (padding tolerated).
std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace mb::oauth_internal
