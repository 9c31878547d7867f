// File: tests/harness/entra/server.mjs — a test-only stand-in for Microsoft Entra ID's v2.0
// endpoints that tests/harness/entra.sh starts on loopback: HTTPS for the token, device
// authorization, discovery and key endpoints (any Host, so a test can name it as any
// cloud's authority), and a plain-HTTP admin port to register apps and users, approve device
// codes, revoke grants, switch on error scenarios and inject transient failures. Only
// node: modules; everything is kept in memory.
//
//   node server.mjs DIR     # reads DIR/tls/server.*, DIR/jwt/client.pem; writes DIR/server.json
//
// tests/harness/README.md ("entra.sh") documents every endpoint, scenario and default.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import { aadstsError } from './aadsts.mjs';
import { Directory, RESOURCES, newSecret } from './directory.mjs';
import { Sts, StsError } from './sts.mjs';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node server.mjs DIR');
  process.exit(2);
}

const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
// Seconds. Entra's defaults: access tokens 60–90 min (3599 s is what it reports), refresh
// tokens 90 days of inactivity, device codes 15 minutes polled every 5 s.
const settings = {
  access_token_ttl: envInt('MB_ENTRA_ACCESS_TTL', 3599),
  refresh_token_ttl: envInt('MB_ENTRA_REFRESH_TTL', 90 * 24 * 3600),
  device_code_ttl: envInt('MB_ENTRA_DEVICE_TTL', 900),
  device_interval: envInt('MB_ENTRA_DEVICE_INTERVAL', 5),
  assertion_max_lifetime: envInt('MB_ENTRA_ASSERTION_MAX_LIFETIME', 600),
  clock_skew: 300,
  verification_uri: 'https://microsoft.com/devicelogin',
};

const freshStats = () => ({
  requests: 0, token_requests: 0, devicecode_requests: 0, by_grant_type: {},
  errors_by_code: {}, faults_served: 0, slow_down: 0, tokens_issued: 0,
});
let stats = freshStats();
const recent = [];  // the last token-endpoint requests, secrets replaced by "<present>"
let faults = [];    // [{status, error, code, retry_after, remaining}]

// ---- the directory at start ----

const directory = new Directory();
const contoso = directory.addTenant({ domain: 'contoso.onmicrosoft.com', name: 'Contoso' });
const fabrikam = directory.addTenant({ domain: 'fabrikam.onmicrosoft.com', name: 'Fabrikam' });
const user = directory.addUser({ upn: 'meganb@contoso.onmicrosoft.com', tenant: contoso.id,
  name: 'Megan Bowen' });
const allRoles = { exchange: ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp',
  'full_access_as_app'], graph: ['Mail.ReadWrite', 'Mail.Send'] };
const allScopes = { exchange: ['IMAP.AccessAsUser.All', 'POP.AccessAsUser.All', 'SMTP.Send',
  'EWS.AccessAsUser.All'], graph: ['Mail.ReadWrite', 'Mail.Send', 'User.Read'] };
const certPem = fs.readFileSync(path.join(dir, 'jwt', 'client.pem'), 'utf8');
const defaultApps = {
  secret: directory.upsertApp({ tenant: contoso.id, display_name: 'mailbridge (secret)',
    secret: newSecret(), roles: allRoles, scopes: allScopes }),
  cert: directory.upsertApp({ tenant: contoso.id, display_name: 'mailbridge (certificate)',
    certificate: certPem, roles: allRoles, scopes: allScopes }),
  noimap: directory.upsertApp({ tenant: contoso.id, display_name: 'mailbridge (no IMAP role)',
    secret: newSecret(), roles: { exchange: [], graph: ['Mail.ReadWrite'] }, scopes: {} }),
  public: directory.upsertApp({ tenant: contoso.id, display_name: 'mailbridge (public client)',
    public: true, scopes: allScopes }),
};

const signing = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
signing.kid = crypto.createHash('sha1')
  .update(signing.publicKey.export({ type: 'spki', format: 'der' })).digest('base64url');
const sts = new Sts(directory, signing, settings, stats);

// ---- HTTP plumbing ----

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1 << 20) reject(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(req, text) {
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    return text ? JSON.parse(text) : {};
  }
  return Object.fromEntries(new URLSearchParams(text));
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store', Pragma: 'no-cache',
    'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

// RFC 6749 §2.3.1: client_id and secret are form-urlencoded inside the Basic credentials.
function basicAuth(req) {
  const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const dec = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
  return { id: dec(decoded.slice(0, colon)), secret: dec(decoded.slice(colon + 1)) };
}

function sendStsError(res, err) {
  const { status, body } = aadstsError(err.code, err.vars, err.overrides);
  stats.errors_by_code[err.code] = (stats.errors_by_code[err.code] ?? 0) + 1;
  send(res, status, body, err.overrides.headers ?? {});
}

function remember(req, form, path) {
  const shown = {};
  for (const [k, v] of Object.entries(form)) {
    shown[k] = ['client_secret', 'client_assertion', 'refresh_token', 'device_code'].includes(k)
      ? '<present>' : v;
  }
  recent.push({ host: req.headers.host ?? '', path, basic_auth: Boolean(basicAuth(req)),
    form: shown, at: new Date().toISOString() });
  while (recent.length > 50) recent.shift();
}

// The next injected fault, if any, for a token or device-code request.
function takeFault() {
  const f = faults[0];
  if (!f) return null;
  if (--f.remaining <= 0) faults.shift();
  stats.faults_served++;
  return f;
}

// ---- the Entra endpoints ----

async function handleSts(req, res) {
  stats.requests++;
  const url = new URL(req.url, 'https://localhost');
  const host = req.headers.host ?? 'localhost';
  const issuerBase = `https://${host}`;
  const parts = url.pathname.split('/').filter(Boolean);
  if (req.method === 'GET' && url.pathname.match(/^(\/[^/]+)?\/discovery\/v2\.0\/keys$/)) {
    const jwk = signing.publicKey.export({ format: 'jwk' });
    return send(res, 200, { keys: [{ kty: 'RSA', use: 'sig', kid: signing.kid, x5t: signing.kid,
      n: jwk.n, e: jwk.e }] });
  }
  if (req.method === 'GET' && parts.length === 4 && parts[1] === 'v2.0' &&
      parts[2] === '.well-known' && parts[3] === 'openid-configuration') {
    return discovery(res, parts[0], issuerBase);
  }
  const m = /^\/([^/]+)\/oauth2\/v2\.0\/(token|devicecode)$/.exec(url.pathname);
  if (!m) return sendStsError(res, new StsError(900144, { detail: 'a known endpoint' }, { status: 404, error: 'invalid_request' }));
  if (req.method !== 'POST') return sendStsError(res, new StsError(900561));
  const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
  remember(req, form, url.pathname);
  if (m[2] === 'token') {
    const g = form.grant_type ?? '';
    stats.token_requests++;
    stats.by_grant_type[g] = (stats.by_grant_type[g] ?? 0) + 1;
  } else {
    stats.devicecode_requests++;
  }
  const fault = takeFault();
  if (fault) {
    const err = new StsError(fault.code, {}, { status: fault.status, error: fault.error,
      headers: fault.retry_after !== undefined ? { 'Retry-After': String(fault.retry_after) } : {} });
    return sendStsError(res, err);
  }
  const endpoint = `${issuerBase}${url.pathname}`;
  try {
    const body = m[2] === 'token'
      ? sts.token(decodeURIComponent(m[1]), form, basicAuth(req), endpoint)
      : sts.deviceCode(decodeURIComponent(m[1]), form, issuerBase);
    if (body.access_token) stats.tokens_issued++;
    return send(res, 200, body);
  } catch (err) {
    if (err instanceof StsError) return sendStsError(res, err);
    throw err;
  }
}

function discovery(res, tenantSegment, base) {
  const t = directory.findTenant(tenantSegment);
  if (!t) return sendStsError(res, new StsError(90002, { tenant: tenantSegment }));
  const root = `${base}/${tenantSegment}`;
  return send(res, 200, {
    token_endpoint: `${root}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt',
      'client_secret_basic'],
    jwks_uri: `${base}/${tenantSegment}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `https://login.microsoftonline.com/${t.id}/v2.0`,
    device_authorization_endpoint: `${root}/oauth2/v2.0/devicecode`,
    authorization_endpoint: `${root}/oauth2/v2.0/authorize`,
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
  });
}

// ---- the admin port ----

function appView(app) {
  return {
    client_id: app.clientId, object_id: app.objectId, sp_object_id: app.spObjectId,
    display_name: app.displayName, tenant: app.tenant, secret: app.secret,
    secret_expired: app.secretExpired, has_certificate: Boolean(app.cert),
    x5t_s256: app.cert?.x5tS256 ?? null, roles: app.roles, scopes: app.scopes,
    consent: app.consent, public: app.isPublic, disabled: app.disabled,
    force_error: app.forced?.code ?? null,
  };
}

function findDeviceCode(userCode) {
  for (const rec of directory.deviceCodes.values()) {
    if (rec.userCode === String(userCode ?? '').toUpperCase()) return rec;
  }
  return null;
}

function admin(method, pathname, body) {
  const route = `${method} ${pathname}`;
  switch (route) {
    case 'GET /health': return [200, { ok: true, tenant: contoso.id }];
    case 'GET /settings': return [200, settings];
    case 'POST /settings':
      for (const [k, v] of Object.entries(body)) {
        if (!(k in settings)) return [400, { error: `unknown setting ${k}` }];
        settings[k] = typeof settings[k] === 'number' ? Number(v) : String(v);
      }
      return [200, settings];
    case 'GET /stats': return [200, stats];
    case 'POST /stats/reset':
      stats = freshStats();
      sts.stats = stats;
      recent.length = 0;
      return [200, stats];
    case 'GET /requests': return [200, { requests: recent }];
    case 'POST /tenants': return [200, directory.addTenant(body)];
    case 'POST /apps': {
      if (body.certificate_file) body.certificate = fs.readFileSync(body.certificate_file, 'utf8');
      const isNew = !directory.apps.has(body.client_id);
      return [200, appView(directory.upsertApp(isNew ? { tenant: contoso.id, ...body } : body))];
    }
    case 'GET /apps': return [200, { apps: [...directory.apps.values()].map(appView) }];
    case 'POST /users': return [200, directory.addUser(body)];
    case 'POST /device/approve':
    case 'POST /device/deny': {
      const rec = findDeviceCode(body.user_code);
      if (!rec) return [404, { error: 'no such user_code' }];
      if (route.endsWith('approve')) {
        rec.state = 'approved';
        rec.upn = body.user ?? user.upn;
      } else {
        rec.state = 'denied';
        rec.denyError = body.error ?? null;
      }
      return [200, { ok: true, state: rec.state }];
    }
    case 'POST /device/expire': {
      const rec = findDeviceCode(body.user_code);
      if (!rec) return [404, { error: 'no such user_code' }];
      rec.expiresAt = 0;
      return [200, { ok: true }];
    }
    case 'POST /grants/revoke': return [200, { revoked: directory.markGrants(body, 'revoked') }];
    case 'POST /grants/expire': return [200, { expired: directory.markGrants(body, 'expired') }];
    case 'POST /faults': {
      const status = Number(body.status ?? 503);
      faults.push({ status, remaining: Number(body.count ?? 1),
        code: Number(body.code ?? (status === 429 ? 50196 : 90033)),
        error: body.error ?? 'temporarily_unavailable',
        retry_after: body.retry_after });
      return [200, { faults }];
    }
    case 'POST /faults/clear': faults = []; return [200, { faults }];
    default: return [404, { error: `no admin route ${route}` }];
  }
}

async function handleAdmin(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  try {
    const body = req.method === 'POST' ? parseBody(req, await readBody(req)) : {};
    const [status, out] = admin(req.method, url.pathname, body);
    send(res, status, out);
  } catch (err) {
    send(res, 400, { error: String(err.message ?? err) });
  }
}

// ---- start ----

const guard = (fn) => (req, res) => fn(req, res).catch((err) => {
  console.error(err);
  if (!res.headersSent) send(res, 500, { error: 'server_error' });
});
const tls = {
  key: fs.readFileSync(path.join(dir, 'tls', 'server.key')),
  cert: fs.readFileSync(path.join(dir, 'tls', 'server.pem')),
};
const stsServer = https.createServer(tls, guard(handleSts));
const adminServer = http.createServer(guard(handleAdmin));
const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
  resolve(server.address().port)));

const port = await listen(stsServer);
const adminPort = await listen(adminServer);
const info = {
  pid: process.pid, port, admin_port: adminPort,
  tenant_id: contoso.id, tenant_domain: contoso.domain, other_tenant_id: fabrikam.id,
  user: user.upn,
  apps: Object.fromEntries(Object.entries(defaultApps).map(([k, a]) => [k, appView(a)])),
  resources: Object.fromEntries(Object.entries(RESOURCES).map(([k, r]) => [k, r.uris[0]])),
};
fs.writeFileSync(path.join(dir, 'server.json.tmp'), JSON.stringify(info, null, 2), { mode: 0o600 });
fs.renameSync(path.join(dir, 'server.json.tmp'), path.join(dir, 'server.json'));
console.log(`entra stand-in ${process.pid}: https://localhost:${port}, admin ${adminPort}`);

const stop = () => {
  stsServer.close();
  adminServer.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
