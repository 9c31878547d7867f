// File: tests/harness/graph/server.mjs — a test-only stand-in for Microsoft Graph's mail API
// (v1.0) that tests/harness/graph.sh starts on loopback: HTTPS for /v1.0/users/… and the
// attachment upload URLs, bearer tokens of the Entra stand-in checked against its JWKS, and a
// plain-HTTP admin port to deliver and inspect mail, read the request counters and log,
// switch the application access policy, invalidate delta tokens and inject faults (429 with
// or without Retry-After, MailboxConcurrency, 503, 504, 401, a dropped connection; before
// the request is acted on, or with `after` once it was: a 504 after the mail was sent).
// Only node: modules; state is in memory.
//
//   node server.mjs DIR     # reads DIR/tls/server.*; writes DIR/server.json
//
// Environment: MB_GRAPH_JWKS_URL and MB_GRAPH_JWKS_CA (the Entra stand-in's key set and its
// CA), MB_GRAPH_TENANT_ID, MB_GRAPH_DOMAIN. tests/harness/README.md ("graph.sh") documents
// every endpoint and setting.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import { GraphApi, splitPath } from './api.mjs';
import { TokenChecker } from './auth.mjs';
import { GraphError, MailStore } from './mailstore.mjs';
import { errorBody, parsePrefer } from './odata.mjs';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node server.mjs DIR');
  process.exit(2);
}

const domain = (process.env.MB_GRAPH_DOMAIN ?? 'contoso.onmicrosoft.com').toLowerCase();
const tenantId = process.env.MB_GRAPH_TENANT_ID ?? crypto.randomUUID();
const settings = {
  clock_skew: 0,              // seconds of leeway on exp/nbf (Graph allows ~5 min; tests want none)
  mailbox_concurrency: 4,     // Outlook's limit of concurrent requests per mailbox
  latency_ms: 0,              // added to every Graph request (makes concurrency observable)
  log_size: 5000,             // requests kept for GET /requests
  revoked_before: 0,          // tokens issued (iat) before this epoch second get 401
  max_body: 4 * 1024 * 1024 + 64 * 1024,  // Graph's 4 MB request limit (plus headers of JSON)
};

const store = new MailStore(tenantId);
const api = new GraphApi(store, settings);
const checker = new TokenChecker({ jwksUrl: process.env.MB_GRAPH_JWKS_URL,
  caFile: process.env.MB_GRAPH_JWKS_CA, settings });

const freshStats = () => ({
  requests: 0, by_route: {}, by_method: {}, by_status: {}, faults_served: 0,
  mailbox_concurrency_rejections: 0, auth_failures: 0, max_in_flight: {}, value_bytes: 0,
  uploads: 0,
});
let stats = freshStats();
let log = [];
let faults = [];
const inFlight = new Map();

// Users of the tenant's domain exist as soon as they are named (every test uses a fresh one);
// any other domain is an unknown user (404 ErrorInvalidUser).
function ensureUser(name) {
  let upn = String(name ?? '');
  if (!upn) throw new GraphError(400, 'BadRequest', 'user is required');
  if (!upn.includes('@')) upn = `${upn}@${domain}`;
  const existing = store.users.get(upn.toLowerCase()) ?? store.byUserId.get(upn);
  if (existing) return existing;
  if (!upn.toLowerCase().endsWith(`@${domain}`)) {
    throw new GraphError(404, 'ErrorInvalidUser', `The requested user '${name}' is invalid.`);
  }
  return store.addUser({ upn });
}
const originalUser = store.user.bind(store);
store.user = (ref) => {
  try {
    return originalUser(ref);
  } catch (err) {
    if (/^[0-9a-f-]{36}$/i.test(String(ref))) throw err;
    return ensureUser(ref);
  }
};

// ---- plumbing ----

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new GraphError(413, 'RequestEntityTooLarge', `The request body is larger than ${limit} bytes.`));
        req.resume();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function writeBody(res, status, body, headers) {
  if (body === null || body === undefined) {
    res.writeHead(status, { 'Content-Length': 0, ...headers });
    return res.end();
  }
  if (Buffer.isBuffer(body)) {
    res.writeHead(status, { 'Content-Length': body.length, ...headers });
    // Streamed in 64 KiB pieces with backpressure, as a large $value arrives.
    for (let off = 0; off < body.length; off += 65536) {
      if (!res.write(body.subarray(off, off + 65536))) {
        if (res.destroyed) return undefined;  // the client went away: no 'drain' will come
        await new Promise((r) => { res.once('drain', r); res.once('close', r); });
        if (res.destroyed) return undefined;
      }
    }
    return res.end();
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8',
    'OData-Version': '4.0', 'Content-Length': Buffer.byteLength(text), ...headers });
  return res.end(text);
}

function count(route, method, status) {
  stats.by_route[route] = (stats.by_route[route] ?? 0) + 1;
  stats.by_method[method] = (stats.by_method[method] ?? 0) + 1;
  stats.by_status[status] = (stats.by_status[status] ?? 0) + 1;
}

function remember(entry) {
  log.push(entry);
  if (log.length > settings.log_size) log = log.slice(-settings.log_size);
}

// The next injected fault matching this request, if any: one served before the request is
// acted on (after = false) or once it was (after = true).
function takeFault(routeName, pathname, user, after = false) {
  const i = faults.findIndex((f) => (!f.route || routeName.includes(f.route) || pathname.includes(f.route)) &&
    (!f.user || f.user.toLowerCase() === String(user ?? '').toLowerCase()) && f.after === after);
  if (i < 0) return null;
  const f = faults[i];
  if (--f.remaining <= 0) faults.splice(i, 1);
  stats.faults_served++;
  return f;
}

function faultError(f) {
  const headers = {};
  if (f.retry_after !== undefined && f.retry_after !== null) headers['Retry-After'] = String(f.retry_after);
  if (f.kind === 'mailbox_concurrency') {
    return new GraphError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', headers);
  }
  const byStatus = {
    429: ['TooManyRequests', 'Please retry again later.'],
    503: ['serviceNotAvailable', 'The service is temporarily unavailable. Please retry after a delay.'],
    504: ['timeout', 'The operation timed out before it could be completed.'],
    401: ['InvalidAuthenticationToken', 'Access token has expired or is not yet valid.'],
    500: ['generalException', 'An unspecified error has occurred.'],
  }[f.status] ?? ['UnknownError', 'An error was injected.'];
  if (f.status === 401) {
    headers['WWW-Authenticate'] = 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"';
  }
  return new GraphError(f.status, f.code ?? byStatus[0], f.message ?? byStatus[1], headers);
}

// A connection closed without an answer (the request was read), as a gateway that lost its
// upstream may do. Logged with status 0.
function dropConnection(req) {
  req.socket.destroy();
  return undefined;
}

// PUT/DELETE on an upload session's URL (pre-authenticated: no bearer token); the status.
async function handleUpload(req, res, url, segs, { ids, base, headers }) {
  const i = segs.indexOf('AttachmentSessions');
  const body = req.method === 'PUT' ? await readBody(req, 5 * 1024 * 1024) : Buffer.alloc(0);
  const [st, out, extra] = await api.upload(req, segs[i + 1], url.searchParams.get('authtoken'), body, base);
  stats.uploads++;
  const outBody = out && out.error ? errorBody(out.error.code, out.error.message, ids) : out;
  await writeBody(res, st, outBody, { ...headers, ...(extra ?? {}) });
  return st;
}

// What a handler of api.mjs sees of a request: the token's claims, the path, the query, the
// Prefer header, and the body as JSON or as base64 MIME (sendMail, drafts).
function requestContext(req, url, raw, fields) {
  const ctype = String(req.headers['content-type'] ?? '').toLowerCase();
  const ctx = {
    ...fields, query: url.searchParams, pathname: url.pathname.replace(/^\/(v1\.0|beta)/, ''),
    isMime: () => ctype.startsWith('text/plain'),
    mime: () => {
      const text = raw.toString('latin1').replace(/\s+/g, '');
      const decoded = Buffer.from(text, 'base64');
      if (!text || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || decoded.length === 0) {
        throw new GraphError(400, 'ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.');
      }
      return decoded;
    },
    json: () => {
      if (ctx.parsed !== undefined) return ctx.parsed;
      try {
        ctx.parsed = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      } catch {
        throw new GraphError(400, 'RequestBodyRead', 'Invalid JSON in the request body.');
      }
      return ctx.parsed;
    },
  };
  return ctx;
}

// ---- the Graph endpoint ----

async function handleGraph(req, res) {
  const started = Date.now();
  const ids = { requestId: crypto.randomUUID(),
    clientRequestId: String(req.headers['client-request-id'] ?? crypto.randomUUID()) };
  const url = new URL(req.url, 'https://localhost');
  const base = `https://${req.headers.host ?? 'localhost'}`;
  const prefer = parsePrefer(req);
  const applied = [];
  const headers = { 'request-id': ids.requestId, 'client-request-id': ids.clientRequestId,
    'x-ms-ags-diagnostic': '{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"graph-stand-in"}}',
    'Cache-Control': 'no-cache', 'Strict-Transport-Security': 'max-age=31536000' };
  let routeName = `${req.method} ${url.pathname}`;
  let userKey = null;
  let released = false;
  let release = () => {};
  let status = 500;
  stats.requests++;
  try {
    const segs = splitPath(url.pathname);
    if (segs[0] === 'api' && segs[1] === 'v2.0') {
      routeName = `${req.method} /api/v2.0/.../AttachmentSessions/{id}`;
      status = await handleUpload(req, res, url, segs, { ids, base, headers });
      return undefined;
    }
    if (segs[0] !== 'v1.0' && segs[0] !== 'beta') {
      throw new GraphError(400, 'BadRequest', `Invalid version: ${segs[0] ?? ''}`);
    }
    const rest = segs.slice(1);
    const route = api.route(req.method, rest);
    if (!route) {
      throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${rest[rest.length - 1] ?? ''}'.`);
    }
    routeName = route.name;
    let claims;
    try {
      claims = await checker.check(req.headers.authorization);
    } catch (err) {
      stats.auth_failures++;
      throw err;
    }
    if (rest[0] === 'users') userKey = String(rest[1]).toLowerCase();
    if (userKey) {
      const n = (inFlight.get(userKey) ?? 0) + 1;
      inFlight.set(userKey, n);
      // Released when the handler ends or the client closes the connection, whichever is
      // first: a request the client gave up on no longer counts against the mailbox.
      const key = userKey;
      release = () => {
        if (released) return;
        released = true;
        inFlight.set(key, inFlight.get(key) - 1);
      };
      res.once('close', release);
      stats.max_in_flight[userKey] = Math.max(stats.max_in_flight[userKey] ?? 0, n);
      if (n > settings.mailbox_concurrency) {
        stats.mailbox_concurrency_rejections++;
        throw new GraphError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.',
          { 'Retry-After': '1' });
      }
    }
    const fault = takeFault(routeName, url.pathname, rest[1]);
    if (fault?.kind === 'drop') {
      status = 0;
      return dropConnection(req);
    }
    if (fault) throw faultError(fault);
    if (settings.latency_ms > 0) await sleep(settings.latency_ms);
    const raw = ['POST', 'PATCH', 'PUT'].includes(req.method) ? await readBody(req, settings.max_body) : Buffer.alloc(0);
    const ctx = requestContext(req, url, raw, { claims, segs: rest, prefer, applied, base });
    const [st, body, extra] = await route.run(ctx);
    status = st;
    // Acted on (a sendMail recorded the mail), then the answer goes wrong.
    const late = takeFault(routeName, url.pathname, rest[1], true);
    if (late?.kind === 'drop') {
      status = 0;
      return dropConnection(req);
    }
    if (late) throw faultError(late);
    if (Buffer.isBuffer(body)) stats.value_bytes += body.length;
    if (prefer.immutable) applied.push('IdType="ImmutableId"');
    if (applied.length) headers['Preference-Applied'] = applied.join(', ');
    return await writeBody(res, st, body, { ...headers, ...(extra ?? {}) });
  } catch (err) {
    if (req.aborted || res.destroyed || err?.code === 'ECONNRESET') {
      // The client closed the connection mid-request: counted as 499 (as nginx does), no
      // answer to write.
      status = 499;
      return undefined;
    }
    if (!(err instanceof GraphError)) {
      console.error(err);
      err = new GraphError(500, 'generalException', 'An unspecified error has occurred.');
    }
    status = err.status;
    return await writeBody(res, err.status, errorBody(err.code, err.message, ids), { ...headers, ...err.headers });
  } finally {
    release();
    count(routeName, req.method, status);
    remember({ at: new Date(started).toISOString(), ms: Date.now() - started, method: req.method,
      url: url.pathname + url.search, route: routeName, status, user: userKey,
      authorization: req.headers.authorization ? String(req.headers.authorization).split(' ')[0] : null,
      prefer: req.headers.prefer ?? null, client_request_id: ids.clientRequestId, request_id: ids.requestId });
  }
}

// ---- the admin port ----

function folderByPath(user, ref) {
  const lower = String(ref ?? 'inbox').toLowerCase();
  try {
    return store.folder(user, lower === 'inbox' ? 'inbox' : ref);
  } catch { /* not an id or well-known name: a display-name path */ }
  let cur = store.folder(user, 'msgfolderroot');
  for (const part of String(ref).split('/').filter(Boolean)) {
    const next = store.children(user, cur).find((f) => f.displayName.toLowerCase() === part.toLowerCase());
    if (!next) {
      const anywhere = [...user.folders.values()].filter((f) => f.displayName.toLowerCase() === lower);
      if (anywhere.length === 1) return anywhere[0];
      throw new GraphError(404, 'ErrorItemNotFound', `no folder ${ref}`);
    }
    cur = next;
  }
  return cur;
}

function folderPath(user, f) {
  const names = [];
  for (let cur = f; cur && cur.wellKnown !== 'msgfolderroot'; cur = user.folders.get(cur.parentId)) names.unshift(cur.displayName);
  return names.join('/');
}

function adminMessage(user, m) {
  return { id: m.restId, immutable_id: m.immutableId, subject: m.props.subject, isRead: m.isRead,
    isDraft: m.isDraft, internetMessageId: m.props.internetMessageId, folder: folderPath(user, user.folders.get(m.folderId)),
    parentFolderId: m.folderId, receivedDateTime: m.receivedDateTime, size: m.mime.length,
    attachments: m.attachments.map((a) => ({ name: a.name, size: a.bytes.length })) };
}

function deliverOne(user, folder, item) {
  const mime = item.mime_base64 !== undefined ? Buffer.from(item.mime_base64, 'base64') : Buffer.from(String(item.mime ?? ''), 'utf8');
  if (!mime.length) throw new GraphError(400, 'BadRequest', 'mime or mime_base64 is required');
  const m = store.add(user, folder, mime, { isRead: Boolean(item.isRead), receivedDateTime: item.receivedDateTime });
  return { id: m.restId, immutable_id: m.immutableId, internetMessageId: m.props.internetMessageId };
}

function admin(method, pathname, query, body) {
  const route = `${method} ${pathname}`;
  switch (route) {
    case 'GET /health': return [200, { ok: true, tenant_id: tenantId, domain }];
    case 'GET /settings': return [200, settings];
    case 'POST /settings':
      for (const [k, v] of Object.entries(body)) {
        if (!(k in settings)) return [400, { error: `unknown setting ${k}` }];
        settings[k] = Number(v);
      }
      return [200, settings];
    case 'GET /stats': return [200, { ...stats, in_flight: Object.fromEntries(inFlight) }];
    case 'POST /stats/reset': stats = freshStats(); log = []; return [200, stats];
    case 'GET /requests': {
      const limit = Number(query.get('limit') ?? settings.log_size);
      return [200, { requests: log.slice(-limit) }];
    }
    case 'GET /users': return [200, { users: [...store.users.values()].map((u) => ({ id: u.id, upn: u.upn,
      policy_denied: u.policyDenied, messages: u.messages.size, sent: u.sent.length })) }];
    case 'POST /users': {
      const u = ensureUser(body.upn ?? body.user);
      if (body.displayName) u.displayName = body.displayName;
      return [200, { id: u.id, upn: u.upn, displayName: u.displayName }];
    }
    case 'POST /policy': {
      const u = ensureUser(body.user);
      u.policyDenied = body.denied === undefined ? true : Boolean(body.denied);
      return [200, { upn: u.upn, policy_denied: u.policyDenied }];
    }
    case 'POST /deliver': {
      const u = ensureUser(body.user);
      const f = folderByPath(u, body.folder ?? 'inbox');
      const items = Array.isArray(body.messages) ? body.messages : [body];
      const out = items.map((item) => deliverOne(u, f, { isRead: body.isRead, ...item }));
      return [200, Array.isArray(body.messages) ? { delivered: out } : out[0]];
    }
    case 'POST /deliver/maildir': {
      // Every file of a Maildir's new/ and cur/ (sorted by name), read here: the benchmark's
      // 10,000 messages without a JSON round trip each.
      const u = ensureUser(body.user);
      const f = folderByPath(u, body.folder ?? 'inbox');
      const files = ['new', 'cur'].flatMap((sub) => {
        const d = path.join(body.path, sub);
        return fs.existsSync(d) ? fs.readdirSync(d).sort().map((n) => path.join(d, n)) : [];
      });
      for (const file of files) store.add(u, f, fs.readFileSync(file), { isRead: Boolean(body.isRead) });
      return [200, { delivered: files.length, user: u.upn }];
    }
    case 'GET /folder': {
      const u = ensureUser(query.get('user'));
      const f = folderByPath(u, query.get('folder') ?? 'inbox');
      const withMime = query.get('mime') === '1';
      return [200, { folder: { ...store.folderView(u, f), path: folderPath(u, f) },
        messages: store.inFolder(u, f).map((m) => ({ ...adminMessage(u, m),
          ...(withMime ? { mime: m.mime.toString('utf8') } : {}) })) }];
    }
    case 'GET /folders': {
      const u = ensureUser(query.get('user'));
      return [200, { folders: [...u.folders.values()].map((f) => ({ ...store.folderView(u, f),
        path: folderPath(u, f), wellKnownName: f.wellKnown })) }];
    }
    case 'GET /message': {
      const u = ensureUser(query.get('user'));
      const m = store.message(u, query.get('id'));
      return [200, { ...adminMessage(u, m), mime: m.mime.toString('utf8') }];
    }
    case 'GET /sent': {
      const u = ensureUser(query.get('user'));
      const withMime = query.get('mime') !== '0';
      return [200, { sent: u.sent.map((s) => (withMime ? s : { ...s, mime: undefined })) }];
    }
    case 'POST /mutate': {
      const u = ensureUser(body.user);
      const m = store.message(u, body.id);
      if (body.action === 'read' || body.action === 'unread') {
        m.isRead = body.action === 'read';
        store.touch(m);
      } else if (body.action === 'move') store.move(u, m, folderByPath(u, body.destination));
      else if (body.action === 'delete') store.remove(u, m);
      else if (body.action === 'purge') store.purge(u, m);
      else return [400, { error: 'action is read, unread, move, delete or purge' }];
      return [200, u.messages.has(m.key) ? adminMessage(u, m) : { purged: true }];
    }
    case 'POST /delta/invalidate': {
      const users = body.user ? [ensureUser(body.user)] : [...store.users.values()];
      for (const u of users) {
        u.deltaEpoch++;
        u.resyncCode = body.code === 'resyncRequired' ? 'resyncRequired' : 'syncStateNotFound';
      }
      return [200, { invalidated: users.map((u) => u.upn), code: users[0]?.resyncCode ?? null }];
    }
    case 'POST /tokens/revoke':
      checker.revokeAll();
      return [200, { revoked_before: settings.revoked_before }];
    case 'GET /faults': return [200, { faults }];
    case 'POST /faults': {
      const status = Number(body.status ?? (body.kind === 'mailbox_concurrency' ? 429 : 503));
      faults.push({ status, remaining: Number(body.count ?? 1), route: body.route ?? null,
        user: body.user ? ensureUser(body.user).upn : null, kind: body.kind ?? null,
        code: body.code ?? null, message: body.message ?? null, retry_after: body.retry_after ?? null,
        after: body.after === true });
      return [200, { faults }];
    }
    case 'POST /faults/clear': faults = []; return [200, { faults }];
    default: return [404, { error: `no admin route ${route}` }];
  }
}

async function handleAdmin(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  try {
    const raw = req.method === 'POST' ? await readBody(req, 512 * 1024 * 1024) : Buffer.alloc(0);
    const body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    const [status, out] = admin(req.method, url.pathname, url.searchParams, body);
    await writeBody(res, status, out, {});
  } catch (err) {
    await writeBody(res, err instanceof GraphError ? err.status : 400,
      { error: String(err.message ?? err), code: err.code ?? null }, {});
  }
}

// ---- start ----

const guard = (fn) => (req, res) => fn(req, res).catch((err) => {
  console.error(err);
  if (!res.headersSent) {
    res.writeHead(500);
    res.end();
  }
});
const tls = {
  key: fs.readFileSync(path.join(dir, 'tls', 'server.key')),
  cert: fs.readFileSync(path.join(dir, 'tls', 'server.pem')),
};
const graphServer = https.createServer({ ...tls, keepAliveTimeout: 30000 }, guard(handleGraph));
const adminServer = http.createServer(guard(handleAdmin));
const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
  resolve(server.address().port)));

const port = await listen(graphServer);
const adminPort = await listen(adminServer);
const info = { pid: process.pid, port, admin_port: adminPort, tenant_id: tenantId, domain,
  user: `meganb@${domain}` };
store.addUser({ upn: info.user, displayName: 'Megan Bowen' });
fs.writeFileSync(path.join(dir, 'server.json.tmp'), JSON.stringify(info, null, 2), { mode: 0o600 });
fs.renameSync(path.join(dir, 'server.json.tmp'), path.join(dir, 'server.json'));
console.log(`graph stand-in ${process.pid}: https://localhost:${port}, admin ${adminPort}`);

const stop = () => {
  graphServer.close();
  adminServer.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
