// File: tests/harness/entra/aadsts.mjs — the Entra ID stand-in's error catalogue: each
// AADSTS code it can send, with the OAuth error name, the HTTP status and the description
// text Microsoft's token endpoint uses (paraphrased where the real text names internals),
// and the body builder that shapes them exactly like Entra's v2.0 error responses:
//
//   {"error", "error_description": "AADSTS<code>: <text>\r\nTrace ID: …\r\nCorrelation ID: …
//    \r\nTimestamp: …", "error_codes": [<code>], "timestamp", "trace_id", "correlation_id",
//    "error_uri": "https://login.microsoftonline.com/error?code=<code>"}
//
// Sources: learn.microsoft.com "Microsoft Entra authentication and authorization error
// codes" (the sample error response and the code table), "OAuth 2.0 device authorization
// grant flow" (authorization_pending 70016, expired_token 70019, authorization_declined),
// and the Azure SDK troubleshooting tables (7000215, 7000222, 700016, 700027, 700021,
// 700023, 700024).
import crypto from 'node:crypto';

// code → [error, http status, description template]; {app}, {tenant}, {resource}, {scope},
// {detail} are filled in per request.
export const AADSTS = {
  7000215: ['invalid_client', 401, "Invalid client secret provided. Ensure the secret being " +
    "sent in the request is the client secret value, not the client secret ID, for a secret " +
    "added to app '{app}'."],
  7000222: ['invalid_client', 401, "The provided client secret keys for app '{app}' are " +
    'expired. Visit the Azure portal to create new keys for your app: ' +
    'https://aka.ms/NewClientSecret, or consider using certificate credentials for added ' +
    'security: https://aka.ms/certCreds.'],
  7000218: ['invalid_client', 401, "The request body must contain the following parameter: " +
    "'client_assertion' or 'client_secret'."],
  7000112: ['unauthorized_client', 400, "Application '{app}' is disabled."],
  700016: ['unauthorized_client', 400, "Application with identifier '{app}' was not found in " +
    "the directory '{tenant}'. This can happen if the application has not been installed by " +
    'the administrator of the tenant or consented to by any user in the tenant. You may have ' +
    'sent your authentication request to the wrong tenant.'],
  90002: ['invalid_request', 400, "Tenant '{tenant}' not found. Check to make sure you have " +
    'the correct tenant ID and are signing into the correct cloud. Check with your ' +
    'subscription administrator, this may happen if there are no active subscriptions for ' +
    'the tenant.'],
  65001: ['invalid_grant', 400, "The user or administrator has not consented to use the " +
    "application with ID '{app}'. Send an interactive authorization request for this user " +
    'and resource.'],
  50173: ['invalid_grant', 400, 'The provided grant has expired due to it being revoked, a ' +
    'fresh auth token is needed. The user might have changed or reset their password. The ' +
    "grant was issued on '{detail}' and the TokensValidFrom date (before which tokens are " +
    "not valid) for this user is '{now}'."],
  700082: ['invalid_grant', 400, "The refresh token has expired due to inactivity. The token " +
    "was issued on {detail} and was inactive for {inactive}."],
  53003: ['invalid_grant', 400, 'Access has been blocked by Conditional Access policies. The ' +
    'access policy does not allow token issuance.'],
  70043: ['invalid_grant', 400, 'The refresh token has expired or is invalid due to sign-in ' +
    'frequency checks by conditional access. The token was issued on {detail} and the ' +
    'maximum allowed lifetime for this request is {inactive}.'],
  700027: ['invalid_client', 401, 'Client assertion contains an invalid signature. [Reason - ' +
    '{detail}, Thumbprint of key used by client: ' +
    "'{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph " +
    "to see configured keys for app Id '{app}'.]"],
  700021: ['invalid_client', 401, "Client assertion application identifier doesn't match " +
    "'client_id' parameter. Review the documentation at " +
    'https://learn.microsoft.com/entra/identity-platform/certificate-credentials .'],
  700023: ['invalid_client', 401, 'Client assertion audience claim does not match Realm ' +
    "issuer. Review the documentation at " +
    'https://learn.microsoft.com/entra/identity-platform/certificate-credentials .'],
  700024: ['invalid_client', 401, 'Client assertion is not within its valid time range. ' +
    'Current time: {now}, assertion valid from {detail}. Review the documentation at ' +
    'https://learn.microsoft.com/entra/identity-platform/certificate-credentials .'],
  50012: ['invalid_client', 401, 'Authentication failed. {detail}'],
  500133: ['invalid_grant', 400, 'Assertion is not within its valid time range. Ensure that ' +
    'the access token is not expired before using it for user assertion, or requesting a ' +
    'new token. Current time: {now}, expiry time of assertion {detail}.'],
  50027: ['invalid_request', 400, 'JWT token is invalid or is malformed.'],
  500011: ['invalid_resource', 400, "The resource principal named {resource} was not found " +
    "in the tenant named {tenant}. This can happen if the application has not been " +
    'installed by the administrator of the tenant or consented to by any user in the ' +
    'tenant. You might have sent your authentication request to the wrong tenant.'],
  1002012: ['invalid_scope', 400, "The provided value for scope {scope} is not valid. Client " +
    'credential flows must have a scope value with /.default suffixed to the resource ' +
    'identifier (application ID URI).'],
  70011: ['invalid_scope', 400, "The provided value for the input parameter 'scope' isn't " +
    'valid. The scope {scope} is not valid.'],
  900144: ['invalid_request', 400, "The request body must contain the following parameter: " +
    "'{detail}'."],
  70003: ['unsupported_grant_type', 400, 'The app requested an unsupported grant type.'],
  900561: ['invalid_request', 405, 'The endpoint only accepts POST requests. Received a GET ' +
    'request.'],
  70000: ['invalid_grant', 400, "Provided grant is invalid or malformed."],
  9002313: ['invalid_request', 400, 'Invalid request. Request is malformed or invalid.'],
  70016: ['authorization_pending', 400, 'The provided request has not yet been authorized ' +
    'by the user. The user must input their code.'],
  70019: ['expired_token', 400, 'Verification code expired.'],
  // Entra's device flow names a denial authorization_declined (RFC 8628 says access_denied;
  // POST /device/deny on the admin port picks either).
  65004: ['authorization_declined', 400, 'User declined to consent to access the app.'],
  70008: ['invalid_grant', 400, 'The provided authorization code or refresh token has expired ' +
    'due to inactivity. Send a new interactive authorization request for this user and ' +
    'resource.'],
  90033: ['temporarily_unavailable', 503, 'A transient error has occurred. Please try again.'],
  50196: ['temporarily_unavailable', 429, 'The server terminated an operation because it ' +
    'encountered a client request loop. Please contact your app vendor.'],
  50034: ['invalid_grant', 400, "The user account {detail} does not exist in the {tenant} " +
    'directory. To sign into this application, the account must be added to the directory.'],
  7000114: ['unauthorized_client', 400, "Application '{app}' is not allowed to make " +
    'application on-behalf-of calls.'],
  700025: ['invalid_client', 401, 'Client is public so neither \'client_assertion\' nor ' +
    "'client_secret' should be presented."],
  70002: ['invalid_client', 401, 'The provided client is not supported for this feature. ' +
    'The client application must be marked as \'mobile.\''],
  50059: ['invalid_request', 400, 'No tenant-identifying information found in either the ' +
    'request or implied by any provided credentials.'],
  900023: ['invalid_request', 400, "Specified tenant identifier '{tenant}' is neither a " +
    'valid DNS name, nor a valid external domain.'],
};

// Entra's timestamp format: "2016-01-09 02:02:12Z".
export function entraTimestamp(date = new Date()) {
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// The error body and status for AADSTS `code`; `vars` fills the template, `error` overrides
// the OAuth error name (e.g. a fault injected as 429 temporarily_unavailable).
export function aadstsError(code, vars = {}, overrides = {}) {
  const entry = AADSTS[code] ?? ['invalid_request', 400, '{detail}'];
  const [error, status, template] = entry;
  const now = new Date();
  const filled = template.replace(/\{(\w+)\}/g, (_, k) =>
    k === 'now' ? now.toISOString() : String(vars[k] ?? ''));
  const traceId = crypto.randomUUID();
  const correlationId = crypto.randomUUID();
  const timestamp = entraTimestamp(now);
  const body = {
    error: overrides.error ?? error,
    error_description: `AADSTS${code}: ${filled}\r\nTrace ID: ${traceId}\r\n` +
      `Correlation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [Number(code)],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
  return { status: overrides.status ?? status, body };
}
