// File: tests/harness/ews/server.mjs — a test-only stand-in for Exchange Server's EWS
// endpoint (/EWS/Exchange.asmx) that tests/harness/ews.sh starts on loopback: HTTPS SOAP with
// the three sign-ins an EWS virtual directory offers — Basic, NTLM (negotiate → challenge →
// authenticate on one kept-alive connection, the NTLMv2 response checked against the
// account's password: ntlm.mjs) and OAuth bearer tokens of the Entra stand-in (aud
// https://outlook.office365.com, app-only with full_access_as_app) — the ExchangeImpersonation
// header (the ApplicationImpersonation role) and delegate access (FullAccess), answers worded
// as Microsoft's documented examples (soap.mjs, ops.mjs), and a plain-HTTP admin port to
// deliver mail, grant rights, inject faults (ErrorServerBusy with or without
// BackOffMilliseconds) and read the counters and request log. Only node: modules; in memory.
//
//   node server.mjs DIR     # reads DIR/tls/server.*; writes DIR/server.json
//
// Environment: MB_EWS_DOMAIN (SMTP domain, corp.example), MB_EWS_NETBIOS (CORP),
// MB_EWS_PASSWORD (every account's password unless given), MB_EWS_JWKS_URL and
// MB_EWS_JWKS_CA (the Entra stand-in's keys; without them bearer tokens are refused).
// tests/harness/README.md ("ews.sh") documents every endpoint and setting.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import { TokenChecker } from '../graph/auth.mjs';
import { AUTODISCOVER_ADMIN, onAutodiscover } from './autodiscover.mjs';
import * as ntlm from './ntlm.mjs';
import { MailStore, OPERATIONS, ResponseError } from './ops.mjs';
import { folderByPath, WRITE_OPERATIONS } from './ops_write.mjs';
import { SEND_ADMIN, SEND_OPERATIONS } from './send.mjs';
import { EwsFault, fault, NS, VERSIONS } from './soap.mjs';
import { child, find, parseXml, textOf, XmlError } from './xml.mjs';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node server.mjs DIR');
  process.exit(2);
}
ntlm.selfTest();  // never serve NTLM that does not reproduce [MS-NLMP] §4.2

const domain = (process.env.MB_EWS_DOMAIN ?? 'corp.example').toLowerCase();
const netbios = (process.env.MB_EWS_NETBIOS ?? 'CORP').toUpperCase();
const defaultPassword = process.env.MB_EWS_PASSWORD ?? crypto.randomBytes(12).toString('base64url');
const settings = { clock_skew: 0, max_body: 16 * 1024 * 1024, log_size: 2000,
  auth: { basic: true, ntlm: true, bearer: true } };
const EXCHANGE_AUDIENCES = ['https://outlook.office365.com', 'https://outlook.office365.com/',
  '00000002-0000-0ff1-ce00-000000000000'];
const checker = new TokenChecker({ jwksUrl: process.env.MB_EWS_JWKS_URL, caFile: process.env.MB_EWS_JWKS_CA,
  settings, audiences: EXCHANGE_AUDIENCES });

const store = new MailStore();
// Accounts by UPN: {upn, sam, password, impersonation (ApplicationImpersonation role), fullAccess}
const accounts = new Map();
function addAccount({ upn, password, impersonation = false, full_access = [] }) {
  let u = String(upn).toLowerCase();
  if (!u.includes('@')) u = `${u}@${domain}`;
  const a = { upn: u, sam: u.split('@')[0], password: password ?? defaultPassword, impersonation: !!impersonation,
    fullAccess: new Set(full_access.map((x) => (x.includes('@') ? x : `${x}@${domain}`).toLowerCase())) };
  accounts.set(u, a);
  store.mailbox(u);
  return a;
}
addAccount({ upn: 'helpdesk' });
addAccount({ upn: 'svc-ews', impersonation: true });
addAccount({ upn: 'delegate', full_access: ['helpdesk'] });

// Mailboxes of the domain exist as soon as they are named (tests use fresh ones), as in the
// Graph stand-in; another domain has none.
const exists = (address) => String(address).toLowerCase().endsWith(`@${domain}`);

// "CORP\user", "user" with the NetBIOS domain, or a UPN.
function lookup(user, dom = '') {
  let u = String(user).toLowerCase();
  let d = String(dom).toUpperCase();
  if (u.includes('\\')) [d, u] = [u.split('\\')[0].toUpperCase(), u.split('\\')[1]];
  if (u.includes('@')) return accounts.get(u) ?? null;
  if (d && d !== netbios && d !== domain.toUpperCase()) return null;
  return accounts.get(`${u}@${domain}`) ?? null;
}

const freshStats = () => ({ requests: 0, by_operation: {}, by_status: {}, faults_served: 0, mime_bytes: 0,
  auth: { basic: { success: 0, failure: 0 }, bearer: { success: 0, failure: 0 },
    ntlm: { negotiate: 0, challenge: 0, authenticate: 0, success: 0, failure: 0, reused: 0 } } });
let stats = freshStats();
let log = [];
let faults = [];

// ---- sign-in ----

const ntlmState = new WeakMap();  // socket -> {challenge} | {account}
const challenges = () => {
  const list = [];
  if (settings.auth.ntlm) list.push('Negotiate', 'NTLM');
  if (settings.auth.basic) list.push(`Basic realm="mail.${domain}"`);
  if (settings.auth.bearer) list.push('Bearer client_id="00000002-0000-0ff1-ce00-000000000000", ' +
    'token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"');
  return list;
};

class Unauthorized extends Error {
  constructor(why, headers = {}) { super(why); this.headers = headers; }
}

// Who is calling: {account} (password or NTLM), {app: claims} (app-only bearer) or
// {account, claims} (delegated bearer); a 401 (Unauthorized) or an NTLM challenge otherwise.
async function authenticate(req, entry) {
  const header = String(req.headers.authorization ?? '');
  const [scheme, value = ''] = [header.split(' ')[0].toLowerCase(), header.slice(header.indexOf(' ') + 1).trim()];
  const state = ntlmState.get(req.socket);
  if (!header && state?.account) {
    stats.auth.ntlm.reused++;
    entry.auth = 'ntlm (connection)';
    return { account: state.account };
  }
  if ((scheme === 'ntlm' || scheme === 'negotiate') && settings.auth.ntlm) return ntlmStep(req, value, entry);
  if (scheme === 'basic' && settings.auth.basic) {
    entry.auth = 'basic';
    const text = Buffer.from(value, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    const account = colon > 0 ? lookup(text.slice(0, colon)) : null;
    if (!account || account.password !== text.slice(colon + 1)) {
      stats.auth.basic.failure++;
      throw new Unauthorized('basic: wrong user name or password');
    }
    stats.auth.basic.success++;
    return { account };
  }
  if (scheme === 'bearer' && settings.auth.bearer) return bearer(header, entry);
  throw new Unauthorized(header ? `scheme ${scheme} not enabled` : 'no credentials');
}

function ntlmStep(req, value, entry) {
  entry.auth = 'ntlm';
  const msg = Buffer.from(value, 'base64');
  const type = ntlm.messageType(msg);
  if (type === 1) {
    stats.auth.ntlm.negotiate++;
    stats.auth.ntlm.challenge++;
    const challenge = crypto.randomBytes(8);
    ntlmState.set(req.socket, { challenge });
    const c = ntlm.buildChallenge(challenge, { domain: netbios, server: 'EX01', dnsDomain: domain, dnsServer: `ex01.${domain}` });
    throw new Unauthorized('ntlm: challenge sent', { 'WWW-Authenticate': `NTLM ${c.toString('base64')}` });
  }
  if (type === 3) {
    stats.auth.ntlm.authenticate++;
    const state = ntlmState.get(req.socket);
    ntlmState.delete(req.socket);
    if (!state?.challenge) {
      stats.auth.ntlm.failure++;
      throw new Unauthorized('ntlm: AUTHENTICATE without a CHALLENGE on this connection');
    }
    const r = ntlm.verifyAuthenticate(msg, state.challenge, lookup);
    entry.ntlm_user = `${r.domain ?? ''}\\${r.user ?? ''}`;
    if (!r.ok) {
      stats.auth.ntlm.failure++;
      throw new Unauthorized(`ntlm: ${r.reason}`);
    }
    stats.auth.ntlm.success++;
    ntlmState.set(req.socket, { account: r.account });  // IIS: the connection is signed in
    return { account: r.account };
  }
  stats.auth.ntlm.failure++;
  throw new Unauthorized('ntlm: not an NTLMSSP message');
}

async function bearer(header, entry) {
  entry.auth = 'bearer';
  let claims;
  try {
    claims = await checker.check(header);
  } catch (err) {
    stats.auth.bearer.failure++;
    throw new Unauthorized(`bearer: ${err.message}`, {
      'x-ms-diagnostics': `2000001;reason="${err.message.replace(/"/g, "'")}";error_category="invalid_token"` });
  }
  stats.auth.bearer.success++;
  if (claims.scp) {
    const account = lookup(claims.upn ?? claims.preferred_username ?? '');
    if (!account) throw new Unauthorized('bearer: the token\'s user has no mailbox here');
    return { account, claims };
  }
  return { app: claims };
}

// ---- the SOAP request ----

// The mailbox the call acts as: the impersonated one, else the caller's own. Faults as
// Exchange gives them.
function actingMailbox(who, header) {
  const imp = child(header, 'ExchangeImpersonation');
  if (!imp) {
    if (who.app) throw new EwsFault('ErrorInvalidExchangeImpersonationHeaderData');
    return { target: who.account.upn, impersonated: false };
  }
  const sid = child(imp, 'ConnectingSID');
  const id = textOf(child(sid, 'PrimarySmtpAddress')) ?? textOf(child(sid, 'SmtpAddress')) ??
    textOf(child(sid, 'PrincipalName'));
  if (!id) throw new EwsFault('ErrorInvalidExchangeImpersonationHeaderData', { text: 'The impersonation header data is invalid: no ConnectingSID address.' });
  const allowed = who.app ? (who.app.roles ?? []).includes('full_access_as_app') : who.account.impersonation;
  if (!allowed) throw new EwsFault('ErrorImpersonateUserDenied');
  if (!exists(id)) throw new EwsFault('ErrorNonExistentMailbox', { text: `The SMTP address has no mailbox associated with it.` });
  return { target: id.toLowerCase(), impersonated: true };
}

function takeFault(op) {
  const i = faults.findIndex((f) => !f.operation || f.operation === op);
  if (i < 0) return null;
  const f = faults[i];
  if (--f.remaining <= 0) faults.splice(i, 1);
  stats.faults_served++;
  return f;
}

function handleSoap(who, raw, req, entry) {
  let doc;
  try {
    doc = parseXml(raw.toString('utf8'));
  } catch (err) {
    if (err instanceof XmlError) throw new EwsFault('ErrorSchemaValidation', { text: `The request failed schema validation: ${err.message}` });
    throw err;
  }
  if (doc.name !== 'Envelope' || doc.ns !== NS.soap) throw new EwsFault('ErrorSchemaValidation', { text: 'The request failed schema validation: not a SOAP 1.1 envelope.' });
  const header = child(doc, 'Header');
  const body = child(doc, 'Body');
  const op = body?.children[0];
  if (!op || op.ns !== NS.messages) throw new EwsFault('ErrorInvalidRequest');
  entry.operation = op.name;
  const version = find(header, 'RequestServerVersion')?.attrs.Version;
  entry.version = version ?? null;
  if (version !== undefined && !VERSIONS.has(version)) throw new EwsFault('ErrorInvalidServerVersion');
  const acting = actingMailbox(who, header);
  entry.mailbox = acting.target;
  entry.impersonated = acting.impersonated;
  const f = takeFault(op.name);
  if (f && f.kind !== 'drop') throw new EwsFault(f.code ?? 'ErrorServerBusy', { status: f.status ?? 500, backOffMs: f.back_off_ms, text: f.message });
  const fn = OPERATIONS[op.name] ?? WRITE_OPERATIONS[op.name] ?? SEND_OPERATIONS[op.name];
  if (!fn) throw new EwsFault('ErrorInvalidRequest', { text: `The request is invalid: ${op.name} is not served by this stand-in.` });
  const canAccess = (address) => {
    const a = String(address).toLowerCase();
    if (!exists(a)) return false;
    if (acting.impersonated) return a === acting.target;
    if (who.app) return false;
    return a === who.account.upn || who.account.fullAccess.has(a);
  };
  const answer = fn({ store, stats, target: acting.target, exists, canAccess }, op);
  if (f) {  // kind "drop": acted on, then the connection is lost before any answer
    entry.fault = 'drop';
    req.socket.destroy();
    return null;
  }
  return answer;
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new EwsFault('ErrorInvalidRequest', { status: 413, text: `The request is larger than ${limit} bytes.` }));
        req.resume();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res, status, text, headers = {}) {
  const body = Buffer.from(text ?? '', 'utf8');
  res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': body.length,
    'request-id': crypto.randomUUID(), 'X-FEServer': 'EX01', ...headers });
  // Large answers (MIME) go in 64 KiB pieces, as IIS writes them.
  for (let off = 0; off < body.length; off += 65536) res.write(body.subarray(off, off + 65536));
  res.end();
}

async function onEws(req, res) {
  const started = Date.now();
  const entry = { at: new Date().toISOString(), method: req.method, path: req.url, auth: null, status: 0,
    anchor: req.headers['x-anchormailbox'] ?? null, content_type: req.headers['content-type'] ?? null };
  stats.requests++;
  let status = 200;
  try {
    const url = new URL(req.url, 'https://localhost');
    if (url.pathname.toLowerCase().startsWith('/autodiscover/')) {
      [status] = await onAutodiscover(req, res, entry, { authenticate, Unauthorized, challenges, readBody, send,
        port: () => port, domain, exists });
      return;
    }
    if (url.pathname.toLowerCase() !== '/ews/exchange.asmx') {
      status = 404;
      return send(res, 404, '', { 'Content-Type': 'text/html' });
    }
    const raw = await readBody(req, settings.max_body);
    let who;
    try {
      who = await authenticate(req, entry);
    } catch (err) {
      if (!(err instanceof Unauthorized)) throw err;
      status = 401;
      entry.why = err.message;
      const headers = { ...err.headers };
      if (!headers['WWW-Authenticate']) headers['WWW-Authenticate'] = challenges();
      // NTLM's challenge needs the connection kept; any other 401 may close it.
      return send(res, 401, '', { ...headers, 'Content-Type': 'text/html' });
    }
    if (req.method !== 'POST') {
      status = 405;
      return send(res, 405, '', { Allow: 'POST' });
    }
    entry.caller = who.account?.upn ?? `app:${who.app?.appid ?? '?'}`;
    if (!/^text\/xml\b/i.test(String(req.headers['content-type'] ?? ''))) {
      throw new EwsFault('ErrorInvalidRequest', { status: 415, text: 'The request must be text/xml; charset=utf-8.' });
    }
    const answer = handleSoap(who, raw, req, entry);
    if (answer === null) {
      status = 0;
      return undefined;
    }
    return send(res, 200, answer);
  } catch (err) {
    if (err instanceof EwsFault) {
      status = err.status;
      entry.fault = err.code;
      return send(res, err.status, fault(err.code, { text: err.message, backOffMs: err.backOffMs }));
    }
    if (err instanceof ResponseError) throw err;
    status = 500;
    entry.error = String(err?.stack ?? err);
    console.error(err);
    return send(res, 500, fault('ErrorInternalServerError'));
  } finally {
    entry.status = status;
    entry.ms = Date.now() - started;
    stats.by_status[status] = (stats.by_status[status] ?? 0) + 1;
    if (entry.operation) stats.by_operation[entry.operation] = (stats.by_operation[entry.operation] ?? 0) + 1;
    log.push(entry);
    if (log.length > settings.log_size) log = log.slice(-settings.log_size);
  }
}

// ---- admin ----

const json = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

const mailboxOf = (name) => {
  const a = String(name ?? '');
  if (!a) throw new Error('mailbox is required');
  const address = a.includes('@') ? a : `${a}@${domain}`;
  if (!exists(address)) throw new Error(`${address} is not of ${domain}`);
  return store.mailbox(address);
};

const ADMIN = {
  'GET /health': () => ({ ok: true, domain, netbios }),
  'POST /accounts': (b) => {
    const a = addAccount(b);
    return { upn: a.upn, sam: a.sam, netbios, impersonation: a.impersonation, full_access: [...a.fullAccess] };
  },
  'GET /accounts': () => [...accounts.values()].map((a) => ({ upn: a.upn, sam: a.sam, impersonation: a.impersonation, full_access: [...a.fullAccess] })),
  'POST /deliver': (b) => {
    const mb = mailboxOf(b.mailbox);
    const list = b.messages ?? [{ mime: b.mime, mime_base64: b.mime_base64, isRead: b.isRead }];
    return { items: list.map((m) => {
      const item = store.deliver(mb, b.folder ?? 'inbox', m.mime_base64 ? Buffer.from(m.mime_base64, 'base64') : m.mime, m);
      return { id: item.id, subject: item.subject, size: item.mime.length };
    }) };
  },
  // Every file of a Maildir's new/ and cur/ (sorted by name), read here: the benchmark's
  // 10,000 messages without a JSON round trip each (as the Graph stand-in's).
  'POST /deliver/maildir': (b) => {
    const mb = mailboxOf(b.mailbox);
    const files = ['new', 'cur'].flatMap((sub) => {
      const d = path.join(String(b.path ?? ''), sub);
      return fs.existsSync(d) ? fs.readdirSync(d).sort().map((n) => path.join(d, n)) : [];
    });
    for (const file of files) store.deliver(mb, b.folder ?? 'inbox', fs.readFileSync(file), { isRead: Boolean(b.isRead) });
    return { delivered: files.length, mailbox: mb.address ?? b.mailbox };
  },
  'POST /remove': (b) => {
    const item = store.items.get(b.id);
    if (!item) throw new Error('no such item');
    store.remove(item);
    return { removed: b.id };
  },
  'GET /folder': (b, q) => {
    const mb = mailboxOf(q.get('mailbox'));
    // folder=: a distinguished folder name, else a display-name path as `path=` takes it.
    const name = q.get('folder') ?? 'inbox';
    const f = q.get('path') ? folderByPath(store, mb, q.get('path'))
      : mb.folders.get(name) ?? mb.folders.get(name.toLowerCase()) ?? folderByPath(store, mb, name);
    if (!f) throw new Error(`no folder ${q.get('path') ?? q.get('folder')}`);
    return { id: f.id, items: store.list(f).map((i) => ({ id: i.id, subject: i.subject, isRead: i.isRead, size: i.mime.length })) };
  },
  'POST /faults': (b) => { faults.push({ ...b, remaining: b.count ?? 1 }); return { faults }; },
  'GET /faults': () => ({ faults }),
  'POST /faults/clear': () => { faults = []; return { faults }; },
  'GET /settings': () => settings,
  'POST /settings': (b) => {
    for (const k of ['clock_skew', 'max_body', 'log_size']) if (b[k] !== undefined) settings[k] = Number(b[k]);
    if (b.auth) Object.assign(settings.auth, b.auth);
    return settings;
  },
  'GET /stats': () => stats,
  'POST /stats/reset': () => { stats = freshStats(); log = []; return stats; },
  'GET /requests': (b, q) => log.slice(-Number(q.get('limit') ?? 100)),
  ...SEND_ADMIN,
  ...AUTODISCOVER_ADMIN,
};

async function onAdmin(req, res) {
  try {
    const url = new URL(req.url, 'http://127.0.0.1');
    const fn = ADMIN[`${req.method} ${url.pathname}`];
    if (!fn) return json(res, 404, { error: 'no such admin route' });
    const raw = await readBody(req, 64 * 1024 * 1024);
    const body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    return json(res, 200, await fn(body, url.searchParams));
  } catch (err) {
    return json(res, 400, { error: String(err.message ?? err) });
  }
}

const ewsServer = https.createServer({
  key: fs.readFileSync(path.join(dir, 'tls/server.key')),
  cert: fs.readFileSync(path.join(dir, 'tls/server.pem')),
  minVersion: 'TLSv1.2', keepAliveTimeout: 120000,
}, (req, res) => { onEws(req, res); });
const adminServer = http.createServer((req, res) => { onAdmin(req, res); });

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
  resolve(server.address().port)));
const port = await listen(ewsServer);
const adminPort = await listen(adminServer);
const info = { pid: process.pid, port, admin_port: adminPort, domain, netbios, password: defaultPassword,
  user: `helpdesk@${domain}`, service_account: `svc-ews@${domain}`, delegate: `delegate@${domain}`,
  bearer: Boolean(process.env.MB_EWS_JWKS_URL) };
fs.writeFileSync(path.join(dir, 'server.json.tmp'), JSON.stringify(info, null, 2), { mode: 0o600 });
fs.renameSync(path.join(dir, 'server.json.tmp'), path.join(dir, 'server.json'));
console.log(`ews stand-in: https://localhost:${port}/EWS/Exchange.asmx, admin http://127.0.0.1:${adminPort}`);

const stop = () => {
  ewsServer.close();
  adminServer.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
