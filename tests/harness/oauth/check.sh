#!/usr/bin/env bash
# File: tests/harness/oauth/check.sh — a shell-level check of the running test OAuth server
# (tests/harness/oauth.sh start DIR): every flow and admin endpoint the C++ tests rely on,
# with curl, so a harness problem shows here and not as a puzzling client failure.
#
#   tests/harness/oauth/check.sh DIR
#
# Changes the server's settings while it runs (device interval, access-token lifetime) and
# restores them at the end; prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail

dir=${1:?usage: check.sh DIR}
[ -f "$dir/env" ] || { echo "check.sh: no OAuth server running for $dir" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# json FIELD < body: the field's value ("" when absent).
json() {
  python3 -c 'import json,sys
try: v = json.load(sys.stdin).get(sys.argv[1], "")
except Exception: v = ""
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$1"
}

# expect NAME BODY FIELD VALUE
expect() {
  local got
  got=$(json "$3" <<<"$2")
  if [ "$got" = "$4" ]; then ok "$1"; else bad "$1" "$3=$got, want $4 (body: ${2:0:200})"; fi
}

# expect_set NAME BODY FIELD
expect_set() {
  if [ -n "$(json "$3" <<<"$2")" ]; then ok "$1"; else bad "$1" "no $3 in ${2:0:200}"; fi
}

tls() { curl -sS --max-time 10 --cacert "$MB_OAUTH_CA_FILE" "$@"; }
admin() { curl -sS --max-time 10 -X POST "$MB_OAUTH_ADMIN_URL$1" "${@:2}"; }
token() { tls "$MB_OAUTH_TOKEN_URL" "$@"; }
basic=(-u "$MB_OAUTH_CLIENT_ID:$MB_OAUTH_CLIENT_SECRET")
public=(-d "client_id=$MB_OAUTH_PUBLIC_CLIENT_ID")
device_gt=urn:ietf:params:oauth:grant-type:device_code

saved=$(curl -sS --max-time 10 "$MB_OAUTH_ADMIN_URL/settings")
restore() {
  admin /settings -H 'content-type: application/json' -d "$saved" >/dev/null
  admin /clients/enable -d "client_id=$MB_OAUTH_CLIENT_ID" >/dev/null
}
trap restore EXIT
admin /settings -d device_interval=1 >/dev/null
admin /stats/reset >/dev/null

# --- client credentials: secret (basic and post), scope and audience, introspection.
r=$(token "${basic[@]}" -d grant_type=client_credentials -d "scope=$MB_OAUTH_MAIL_SCOPE")
expect "client_credentials basic: bearer" "$r" token_type Bearer
expect "client_credentials basic: .default scope" "$r" scope "$MB_OAUTH_MAIL_SCOPE"
expect_set "client_credentials basic: expires_in" "$r" expires_in
at=$(json access_token <<<"$r")
r=$(tls -u "$MB_OAUTH_INTROSPECT_CLIENT_ID:$MB_OAUTH_INTROSPECT_SECRET" -d "token=$at" \
  "$MB_OAUTH_INTROSPECT_URL")
expect "introspection: active" "$r" active True
expect "introspection: audience" "$r" aud "$MB_OAUTH_MAIL_RESOURCE"
r=$(token -d grant_type=client_credentials -d "client_id=$MB_OAUTH_CLIENT_ID" \
  -d "client_secret=$MB_OAUTH_CLIENT_SECRET" -d "resource=$MB_OAUTH_GRAPH_RESOURCE" \
  -d scope=graph.mail)
expect "client_credentials post + resource: scope" "$r" scope graph.mail
code=$(token -o /dev/null -w '%{http_code}' -d grant_type=client_credentials \
  -d "client_id=$MB_OAUTH_CLIENT_ID" -d client_secret=wrong)
[ "$code" = 401 ] && ok "wrong secret: HTTP 401" || bad "wrong secret: HTTP 401" "got $code"
r=$(token -d grant_type=client_credentials -d "client_id=$MB_OAUTH_CLIENT_ID" -d client_secret=wrong)
expect "wrong secret: invalid_client" "$r" error invalid_client

# --- disabling a client.
admin /clients/disable -d "client_id=$MB_OAUTH_CLIENT_ID" >/dev/null
r=$(token "${basic[@]}" -d grant_type=client_credentials)
expect "disabled client: invalid_client" "$r" error invalid_client
admin /clients/enable -d "client_id=$MB_OAUTH_CLIENT_ID" >/dev/null
r=$(token "${basic[@]}" -d grant_type=client_credentials)
expect_set "re-enabled client: token" "$r" access_token

# --- device code: pending, slow_down, approval, tokens, rotation, reuse.
d=$(tls "${public[@]}" -d "scope=mail.access offline_access" "$MB_OAUTH_DEVICE_URL")
expect "device authorization: interval" "$d" interval 1
dc=$(json device_code <<<"$d")
uc=$(json user_code <<<"$d")
poll() { token "${public[@]}" -d "grant_type=$device_gt" -d "device_code=$1"; }
# Both polls go in one curl run, on one connection (--next), so that they are milliseconds
# apart however loaded the machine is: two separate curl runs can be further apart than the
# 1 s interval, and then the second poll is rightly not too fast.
one_poll=(-sS --max-time 10 --cacert "$MB_OAUTH_CA_FILE" -w '\n' "${public[@]}"
          -d "grant_type=$device_gt" -d "device_code=$dc" "$MB_OAUTH_TOKEN_URL")
both=$(curl "${one_poll[@]}" --next "${one_poll[@]}")
expect "device: authorization_pending" "$(sed -n 1p <<<"$both")" error authorization_pending
expect "device: immediate re-poll gets slow_down" "$(sed -n 2p <<<"$both")" error slow_down
r=$(admin /device/approve -d "user_code=$uc")
expect "admin approve" "$r" approved True
sleep 6.5  # the interval grew to 1 + 5 s with the slow_down (RFC 8628 §3.5)
r=$(poll "$dc")
expect_set "device: refresh token" "$r" refresh_token
expect "device: scope (the resource's part)" "$r" scope mail.access
rt1=$(json refresh_token <<<"$r")
at=$(json access_token <<<"$r")
r=$(tls -u "$MB_OAUTH_INTROSPECT_CLIENT_ID:$MB_OAUTH_INTROSPECT_SECRET" -d "token=$at" \
  "$MB_OAUTH_INTROSPECT_URL")
expect "introspection: user token names the account" "$r" username "$MB_OAUTH_TEST_ACCOUNT"
r=$(token "${public[@]}" -d grant_type=refresh_token -d "refresh_token=$rt1")
rt2=$(json refresh_token <<<"$r")
[ -n "$rt2" ] && [ "$rt2" != "$rt1" ] && ok "refresh: rotated" || bad "refresh: rotated" "$r"
r=$(token "${public[@]}" -d grant_type=refresh_token -d "refresh_token=$rt1")
expect "refresh: reused old token: invalid_grant" "$r" error invalid_grant
r=$(token "${public[@]}" -d grant_type=refresh_token -d "refresh_token=$rt2")
expect "refresh: the reuse revoked the whole grant" "$r" error invalid_grant

# --- revoking a refresh token, denied and expired device codes.
d=$(tls "${public[@]}" -d "scope=mail.access offline_access" "$MB_OAUTH_DEVICE_URL")
admin /device/approve -d "user_code=$(json user_code <<<"$d")" >/dev/null
r=$(poll "$(json device_code <<<"$d")")
rt=$(json refresh_token <<<"$r")
at=$(json access_token <<<"$r")
r=$(admin /tokens/revoke -d "token=$rt")
expect "admin revoke refresh token" "$r" revoked RefreshToken
r=$(token "${public[@]}" -d grant_type=refresh_token -d "refresh_token=$rt")
expect "revoked refresh token: invalid_grant" "$r" error invalid_grant
introspect() {
  tls -u "$MB_OAUTH_INTROSPECT_CLIENT_ID:$MB_OAUTH_INTROSPECT_SECRET" -d "token=$1" \
    "$MB_OAUTH_INTROSPECT_URL"
}
expect "its access token still active" "$(introspect "$at")" active True
r=$(admin /grants/revoke -d "token=$at")
expect "admin revoke grant" "$r" revoked_grant True
expect "revoked grant: access token inactive" "$(introspect "$at")" active False
d=$(tls "${public[@]}" -d "scope=mail.access" "$MB_OAUTH_DEVICE_URL")
admin /device/deny -d "user_code=$(json user_code <<<"$d")" >/dev/null
r=$(poll "$(json device_code <<<"$d")")
expect "denied device code: access_denied" "$r" error access_denied
admin /settings -d device_code_ttl=1 >/dev/null
d=$(tls "${public[@]}" -d "scope=mail.access" "$MB_OAUTH_DEVICE_URL")
sleep 2.2
r=$(poll "$(json device_code <<<"$d")")
expect "expired device code: expired_token" "$r" error expired_token

# --- a short access-token lifetime.
admin /settings -d access_token_ttl=2 >/dev/null
r=$(token "${basic[@]}" -d grant_type=client_credentials -d scope=mail.access)
expect "settings: access-token lifetime" "$r" expires_in 2
at=$(json access_token <<<"$r")
sleep 3.2
r=$(curl -sS --max-time 10 "$MB_OAUTH_ADMIN_URL/stats")
expect "stats: the one slow_down counted" "$r" slow_down 1
expect "introspection: expired token inactive" "$(introspect "$at")" active False

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
