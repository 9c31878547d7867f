// File: tests/harness/oauth/server.mjs — the test-only OAuth 2.0 authorization server that
// tests/harness/oauth.sh starts on loopback: oidc-provider (a certified, standards-conformant
// implementation) over HTTPS, plus a plain-HTTP admin port for what a browser or an operator
// would do (approve a device code, disable a client, revoke a grant, shorten lifetimes).
//
//   node server.mjs DIR     # reads DIR/tls/server.*, DIR/jwt/client.pem; writes DIR/server.json
//
// Every OAuth response (tokens and errors alike) is oidc-provider's own; the only thing
// added in front of it is RFC 8628's slow_down, which the library does not implement.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import querystring from 'node:querystring';

import Provider, { errors } from 'oidc-provider';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node server.mjs DIR');
  process.exit(2);
}

const TEST_ACCOUNT = 'oauth-user@mailbridge.test';
const jwtCert = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'jwt', 'client.pem')));
const jwtX5tS256 = crypto.createHash('sha256').update(jwtCert.raw).digest('base64url');
const secret = () => crypto.randomBytes(24).toString('base64url');

// The registered clients (see tests/harness/README.md). Secrets are fresh at every start.
const clients = [
  { // a confidential app: client_secret_basic or client_secret_post, app-only or delegated
    client_id: 'mb-secret-client',
    client_secret: secret(),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials', 'refresh_token',
      'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: [],
    redirect_uris: [],
  },
  { // an app that signs in with a certificate (RFC 7523 assertion, PS256/RS256, x5t#S256)
    client_id: 'mb-jwt-client',
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    jwks: { keys: [{ ...jwtCert.publicKey.export({ format: 'jwk' }),
      x5c: [jwtCert.raw.toString('base64')], 'x5t#S256': jwtX5tS256, use: 'sig' }] },
  },
  { // a public client for the device-code flow of an administrator at a terminal
    client_id: 'mb-device-client',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
  { // a resource server (Dovecot's oauth2 passdb) that only introspects tokens
    client_id: 'mb-introspect',
    client_secret: secret(),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  },
];

// Lifetimes in seconds; environment at start, POST /settings on the admin port later.
const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const settings = {
  access_token_ttl: envInt('MB_OAUTH_ACCESS_TTL', 3600),
  refresh_token_ttl: envInt('MB_OAUTH_REFRESH_TTL', 14 * 24 * 3600),
  device_code_ttl: envInt('MB_OAUTH_DEVICE_TTL', 600),
  device_interval: envInt('MB_OAUTH_DEVICE_INTERVAL', 5),
};

// The test resource servers (RFC 8707 resource indicators). A token for one of them carries
// its identifier as `aud` and only its scopes. `<resource>/.default` mirrors Entra ID's way of
// asking for "everything this app was granted on that resource".
const MAIL = 'https://mail.mailbridge.test';
const GRAPH = 'https://graph.mailbridge.test';
const resourceServers = {
  [MAIL]: { scope: `mail.access mail.send ${MAIL}/.default` },
  [GRAPH]: { scope: `graph.mail ${GRAPH}/.default` },
};
const allScopes = ['openid', 'offline_access',
  ...Object.values(resourceServers).flatMap((rs) => rs.scope.split(' '))];

function resourceForScope(scope) {
  const wanted = (scope ?? '').split(' ').filter(Boolean);
  return Object.keys(resourceServers).find(
    (id) => wanted.some((s) => resourceServers[id].scope.split(' ').includes(s)),
  );
}

// ---- storage: everything in memory, clients served from `clients` so they can be disabled.

const stores = new Map();  // model name -> Map(id -> { payload, expiresAt })
const disabledClients = new Set();

function clientMetadata(id) {
  if (disabledClients.has(id)) return undefined;
  return clients.find((c) => c.client_id === id);
}

class MemoryAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    this.store.set(id, { payload: { ...payload }, expiresAt });
  }

  async find(id) {
    if (this.name === 'Client') return clientMetadata(id);
    return this.store.get(id)?.payload;
  }

  async findByUserCode(userCode) {
    for (const { payload } of this.store.values()) {
      if (payload.userCode === userCode) return payload;
    }
    return undefined;
  }

  async findByUid(uid) {
    for (const { payload } of this.store.values()) {
      if (payload.uid === uid) return payload;
    }
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, { payload }] of this.store) {
      if (payload.grantId === grantId) this.store.delete(id);
    }
  }
}

// Entries long past their expiry; the provider checks expiry itself, this only bounds memory.
setInterval(() => {
  const horizon = Date.now() - 3600 * 1000;
  for (const store of stores.values()) {
    for (const [id, { expiresAt }] of store) {
      if (expiresAt !== undefined && expiresAt < horizon) store.delete(id);
    }
  }
}, 60 * 1000).unref();

// ---- the provider ----

const tls = {
  key: fs.readFileSync(path.join(dir, 'tls', 'server.key')),
  cert: fs.readFileSync(path.join(dir, 'tls', 'server.pem')),
};

function signingJwks() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'mb-test-signing', use: 'sig' }] };
}

function providerConfiguration() {
  return {
    adapter: MemoryAdapter,
    clients: [],
    jwks: signingJwks(),
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access'],
    claims: { openid: ['sub'], email: ['email'] },
    rotateRefreshToken: true,
    // Any account id a test approves exists; its e-mail address is the id (what Dovecot's
    // oauth2 passdb compares with the login name).
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, email: sub }) }),
    extraTokenClaims: (_ctx, token) => (token.accountId
      ? { username: token.accountId, email: token.accountId } : undefined),
    // Entra ID selects the certificate by the assertion's thumbprint header; so do we, so a
    // client that forgets x5t#S256 (or sends another certificate's) is refused here too.
    assertJwtClientAuthClaimsAndHeader: async (_ctx, _claims, header, client) => {
      if (client.clientId === 'mb-jwt-client' && header['x5t#S256'] !== jwtX5tS256) {
        throw new errors.InvalidClientAuth('x5t#S256 does not name the registered certificate');
      }
    },
    ttl: {
      AccessToken: () => settings.access_token_ttl,
      ClientCredentials: () => settings.access_token_ttl,
      RefreshToken: () => settings.refresh_token_ttl,
      DeviceCode: () => settings.device_code_ttl,
      Grant: () => 30 * 24 * 3600,
      IdToken: () => 3600,
      Interaction: () => 3600,
      Session: () => 3600,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, _client, oneOf) => oneOf
          ?? resourceForScope(ctx.oidc.params?.scope),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          const rs = resourceServers[indicator];
          if (!rs) throw new errors.InvalidTarget();
          return { scope: rs.scope, audience: indicator, accessTokenFormat: 'opaque' };
        },
      },
    },
  };
}

// ---- device-code approval without a browser ----

function requestedScopes(code) {
  return new Set((code.params?.scope ?? '').split(' ').filter(Boolean));
}

// The form a user code is stored in (oidc-provider's own rule: upper case, no separators).
const normalizeUserCode = (input) => String(input).toUpperCase().replace(/\W/g, '');

async function approveDeviceCode(provider, userCode, account) {
  const code = await provider.DeviceCode.findByUserCode(normalizeUserCode(userCode));
  if (!code) return [404, { error: 'unknown_user_code' }];
  if (code.accountId || code.error) return [409, { error: 'already_decided' }];
  const scopes = requestedScopes(code);
  const resource = code.params?.resource ?? resourceForScope(code.params?.scope);
  const grant = new provider.Grant({ accountId: account, clientId: code.clientId });
  const oidcScopes = [...scopes].filter((s) => ['openid', 'offline_access'].includes(s));
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
  let granted = oidcScopes;
  if (resource && resourceServers[resource]) {
    const rsScopes = resourceServers[resource].scope.split(' ').filter((s) => scopes.has(s));
    grant.addResourceScope(resource, rsScopes.join(' '));
    granted = granted.concat(rsScopes);
    code.resource = resource;
  }
  Object.assign(code, {
    accountId: account,
    authTime: Math.floor(Date.now() / 1000),
    grantId: await grant.save(),
    scope: granted.join(' '),
  });
  await code.save();
  return [200, { approved: true, account, scope: code.scope }];
}

async function denyDeviceCode(provider, userCode) {
  const code = await provider.DeviceCode.findByUserCode(normalizeUserCode(userCode));
  if (!code) return [404, { error: 'unknown_user_code' }];
  Object.assign(code, { error: 'access_denied', errorDescription: 'denied by the test' });
  await code.save();
  return [200, { denied: true }];
}

// ---- revocation for tests ----

async function findAnyToken(provider, value) {
  for (const model of [provider.RefreshToken, provider.AccessToken, provider.ClientCredentials]) {
    const token = await model.find(value, { ignoreExpiration: true });
    if (token) return token;
  }
  return undefined;
}

async function revokeGrant(grantId) {
  for (const [name, store] of stores) {
    if (name === 'Grant') {
      store.delete(grantId);
      continue;
    }
    for (const [id, { payload }] of store) {
      if (payload.grantId === grantId) store.delete(id);
    }
  }
}

// ---- the admin port ----

const stats = { requests: 0, token: {}, slow_down: 0 };

async function admin(provider, method, url, body) {
  const route = `${method} ${url.pathname}`;
  switch (route) {
    case 'GET /health': return [200, { ok: true, issuer: provider.issuer }];
    case 'GET /settings': return [200, settings];
    case 'POST /settings':
      for (const key of Object.keys(settings)) {
        if (body[key] !== undefined) {
          const v = Number(body[key]);
          if (!Number.isInteger(v) || v <= 0) return [400, { error: `bad ${key}` }];
          settings[key] = v;
        }
      }
      return [200, settings];
    case 'GET /stats': return [200, stats];
    case 'POST /stats/reset':
      Object.assign(stats, { requests: 0, token: {}, slow_down: 0 });
      return [200, stats];
    case 'POST /device/approve':
      if (!body.user_code) return [400, { error: 'user_code is required' }];
      return approveDeviceCode(provider, body.user_code, body.account || TEST_ACCOUNT);
    case 'POST /device/deny':
      if (!body.user_code) return [400, { error: 'user_code is required' }];
      return denyDeviceCode(provider, body.user_code);
    case 'POST /clients/disable':
    case 'POST /clients/enable': {
      if (!clients.find((c) => c.client_id === body.client_id)) {
        return [404, { error: 'unknown client' }];
      }
      if (route.endsWith('disable')) disabledClients.add(body.client_id);
      else disabledClients.delete(body.client_id);
      return [200, { client_id: body.client_id, enabled: !disabledClients.has(body.client_id) }];
    }
    case 'POST /tokens/revoke': {
      const token = body.token && await findAnyToken(provider, body.token);
      if (!token) return [404, { error: 'unknown token' }];
      await token.destroy();
      return [200, { revoked: token.kind }];
    }
    case 'POST /grants/revoke': {
      const token = body.token && await findAnyToken(provider, body.token);
      const grantId = body.grant_id ?? token?.grantId;
      if (!grantId) return [404, { error: 'unknown grant' }];
      await revokeGrant(grantId);
      return [200, { revoked_grant: true }];
    }
    default: return [404, { error: `no route ${route}` }];
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(req, text) {
  if (!text) return {};
  if ((req.headers['content-type'] ?? '').includes('application/json')) return JSON.parse(text);
  return querystring.parse(text);
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function handleAdmin(provider, req, res) {
  try {
    const url = new URL(req.url, 'http://127.0.0.1');
    const body = parseBody(req, await readBody(req));
    const [status, out] = await admin(provider, req.method, url, body);
    sendJson(res, status, out);
  } catch (err) {
    sendJson(res, 500, { error: String(err?.message ?? err) });
  }
}

// ---- the OAuth port: counting, RFC 8628 slow_down, then oidc-provider ----

const polls = new Map();  // device_code -> { last (ms), interval (s) }

// RFC 8628 §3.5: a client polling faster than the interval gets slow_down and must add 5 s.
// A 20% tolerance keeps a client that waits exactly `interval` from tripping it.
function tooFast(deviceCode) {
  const now = Date.now();
  const state = polls.get(deviceCode) ?? { last: 0, interval: settings.device_interval };
  const fast = state.last && now - state.last < state.interval * 800;
  if (fast) state.interval += 5;
  state.last = now;
  polls.set(deviceCode, state);
  return fast;
}

async function handleOAuth(callback, req, res) {
  stats.requests += 1;
  const url = new URL(req.url, 'https://localhost');
  if (req.method === 'POST' && url.pathname === '/token') {
    const text = await readBody(req);
    req.body = text;  // oidc-provider parses req.body when the stream was already read
    const form = querystring.parse(text);
    const gt = String(form.grant_type ?? '');
    stats.token[gt] = (stats.token[gt] ?? 0) + 1;
    if (gt === 'urn:ietf:params:oauth:grant-type:device_code' && form.device_code
        && tooFast(String(form.device_code))) {
      stats.slow_down += 1;
      sendJson(res, 400, { error: 'slow_down',
        error_description: 'you are polling too quickly and should back off at a reasonable rate' });
      return;
    }
  }
  callback(req, res);
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function main() {
  const oauthServer = https.createServer({ ...tls, minVersion: 'TLSv1.2' });
  const port = await listen(oauthServer);
  const provider = new Provider(`https://localhost:${port}`, providerConfiguration());
  // RFC 8628 §3.2 `interval`, which the library leaves to the client's 5 s default.
  provider.on('device_authorization.success', (_ctx, body) => {
    body.interval = settings.device_interval;
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error:', err));
  const callback = provider.callback();
  oauthServer.on('request', (req, res) => {
    handleOAuth(callback, req, res).catch((err) => sendJson(res, 500, { error: 'server_error',
      error_description: String(err?.message ?? err) }));
  });
  const adminServer = http.createServer((req, res) => { handleAdmin(provider, req, res); });
  const adminPort = await listen(adminServer);
  // What oauth.sh turns into DIR/env; it holds the client secrets, so owner-only.
  const tmp = path.join(dir, 'server.json.tmp');
  fs.writeFileSync(tmp, JSON.stringify({
    port,
    admin_port: adminPort,
    pid: process.pid,
    test_account: TEST_ACCOUNT,
    jwt_x5t_s256: jwtX5tS256,
    clients: Object.fromEntries(clients.map((c) => [c.client_id, c.client_secret ?? ''])),
  }), { mode: 0o600 });
  fs.renameSync(tmp, path.join(dir, 'server.json'));
  console.log(`oauth server: issuer https://localhost:${port}, admin http://127.0.0.1:${adminPort}`);
  const stop = () => { oauthServer.close(); adminServer.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error('oauth server failed to start:', err);
  process.exit(1);
});
