// File: tests/harness/smtp/server.mjs — the test-only SMTP server that tests/harness/smtp.sh
// starts on loopback: npm smtp-server (a mature RFC 5321 implementation) on four listeners,
// with a spool a test can read and a plain-HTTP admin port for counters and fault switches.
//
//   node server.mjs DIR [OAUTH_DIR]   # reads DIR/tls/*, writes DIR/server.json, DIR/spool/
//
// Listeners (all 127.0.0.1, free ports picked here so nothing can take them in between):
//   submission  STARTTLS offered, required before AUTH; AUTH required before MAIL (587)
//   smtps       implicit TLS, AUTH required (465)
//   relay       STARTTLS offered, no AUTH at all, accepts anyone (a port-25 relay)
//   mismatch    implicit TLS with a certificate for another host name (hostname tests)
// tests/harness/README.md ("smtp.sh") documents the admin endpoints and the fault switches.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const dir = process.argv[2];
const oauthDir = process.argv[3] || '';
if (!dir) {
  console.error('usage: node server.mjs DIR [OAUTH_DIR]');
  process.exit(2);
}
const PASSWORD = process.env.MB_SMTP_PASSWORD || '';
if (!PASSWORD) {
  console.error('server.mjs: MB_SMTP_PASSWORD is not set');
  process.exit(2);
}
const DEFAULT_SIZE = 10 * 1024 * 1024;
const spoolDir = path.join(dir, 'spool');
fs.mkdirSync(spoolDir, { recursive: true });
const logStream = fs.createWriteStream(path.join(dir, 'logs', 'smtp.log'), { flags: 'a' });
const log = (line) => logStream.write(`${new Date().toISOString()} ${line}\n`);

// --- OAuth: bearer tokens validated by RFC 7662 introspection at the oauth.sh server ------
function readEnv(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
const oauth = oauthDir ? readEnv(path.join(oauthDir, 'env')) : null;
const oauthCa = oauth ? fs.readFileSync(oauth.MB_OAUTH_CA_FILE) : null;

function introspect(token) {
  return new Promise((resolve) => {
    const body = new URLSearchParams({ token }).toString();
    const basic = Buffer.from(
      `${oauth.MB_OAUTH_INTROSPECT_CLIENT_ID}:${oauth.MB_OAUTH_INTROSPECT_SECRET}`).toString('base64');
    const req = https.request(oauth.MB_OAUTH_INTROSPECT_URL, {
      method: 'POST', ca: oauthCa, timeout: 10000,
      headers: { 'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body), authorization: `Basic ${basic}` },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch { resolve({}); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('introspection timed out')));
    req.on('error', (err) => { log(`introspection error: ${err.message}`); resolve({}); });
    req.end(body);
  });
}

// --- state ---------------------------------------------------------------------------------
const DEFAULT_RULES = [
  { pattern: '^reject-', code: 550, message: '5.1.1 Recipient address rejected: no such user' },
  { pattern: '^defer-', code: 451, message: '4.7.1 Recipient address rejected: try again later' },
];
const freshCounters = () => ({
  connections: 0, sessions: 0, refused_connections: 0, mail_commands: 0, rcpt_commands: 0,
  rcpt_rejected: 0, messages: 0, tempfailed: 0, dropped: 0, second_mail_refused: 0,
  commands: {}, connections_by_port: {},
  auth: { success: 0, failure: 0, by_method: {} },
});
const freshFaults = () => ({
  rcpt_rules: [], refuse_second_mail: false, refuse_connect: 0, drop_after_data: 0,
  tempfail: 0, ehlo_unsupported: false, hide: [], auth_methods: null, size: DEFAULT_SIZE,
  greet_delay_ms: 100,
});
let counters = freshCounters();
let faults = freshFaults();
let messages = [];          // records, as in DIR/spool/<seq>.json
let nextSeq = 1;
let nextConnection = 1;
const sessions = new Map(); // session id -> record

const HIDEABLE = ['STARTTLS', 'PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE', 'DSN',
  'ENHANCEDSTATUSCODES'];

// A reply text that carries its own enhanced status code (RFC 3463) is sent as it is;
// smtp-server would otherwise put its generic code for the reply in front of ours.
const originalSend = SMTPConnection.prototype.send;
SMTPConnection.prototype.send = function send(code, data, context) {
  const own = typeof data === 'string' && /^[245]\.\d{1,3}\.\d{1,3} /.test(data);
  return originalSend.call(this, code, data, own ? false : context);
};
// smtp-server waits a fixed 100 ms before its greeting to catch clients that talk too soon;
// the wait is a fault switch here (greet_delay_ms) so a benchmark can measure the client.
SMTPConnection.prototype.init = function init() {
  this._setListeners(() => {
    const max = this._server.options.maxClients;
    if (max && this._server.connections.size > max) {
      return this.send(421, `${this.name} Too many connected clients, try again in a moment`, false);
    }
    const timer = setTimeout(() => this.connectionReady(), faults.greet_delay_ms);
    timer.unref();
    return undefined;
  });
};
// Every command is counted, per verb, so a test can see RSET, QUIT, STARTTLS, HELO...
for (const verb of ['EHLO', 'HELO', 'STARTTLS', 'AUTH', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP',
  'QUIT', 'VRFY']) {
  const original = SMTPConnection.prototype[`handler_${verb}`];
  if (!original) continue;
  SMTPConnection.prototype[`handler_${verb}`] = function handler(command, callback) {
    counters.commands[verb] = (counters.commands[verb] || 0) + 1;
    const s = sessions.get(this.session.id);
    if (s && s.commands.length < 200) s.commands.push(verb);  // enough to see the order
    if (verb === 'EHLO' && faults.ehlo_unsupported) {
      this.send(502, '5.5.1 Error: command not implemented');
      return callback();
    }
    return original.call(this, command, callback);
  };
}

function connectionOf(session) {
  for (const listener of listeners.values()) {
    for (const c of listener.server.connections) if (c.session === session) return c;
  }
  return null;
}

function smtpError(code, message) {
  const err = new Error(message);
  err.responseCode = code;
  return err;
}

function ruleFor(address) {
  for (const rule of [...faults.rcpt_rules, ...DEFAULT_RULES]) {
    try {
      if (new RegExp(rule.pattern, 'i').test(address)) return rule;
    } catch { /* a bad pattern matches nothing */ }
  }
  return null;
}

function applyFaultsToOptions() {
  for (const { server, name } of listeners.values()) {
    const o = server.options;
    for (const ext of HIDEABLE) {
      if (ext !== 'SIZE') o[`hide${ext}`] = faults.hide.includes(ext);
    }
    // SIZE is advertised whenever there is a limit: hiding it means no limit at all.
    o.size = faults.hide.includes('SIZE') ? 0 : faults.size;
    if (name !== 'relay') {
      o.authMethods = faults.auth_methods || baseAuthMethods();
    }
  }
}
function baseAuthMethods() { return oauth ? ['PLAIN', 'LOGIN', 'XOAUTH2'] : ['PLAIN', 'LOGIN']; }

// --- SMTP handlers -------------------------------------------------------------------------
function onConnect(portName) {
  return (session, callback) => {
    counters.connections += 1;
    counters.connections_by_port[portName] = (counters.connections_by_port[portName] || 0) + 1;
    if (faults.refuse_connect === true || faults.refuse_connect > 0) {
      if (faults.refuse_connect !== true) faults.refuse_connect -= 1;
      counters.refused_connections += 1;
      log(`connection ${session.id} on ${portName} refused with 421 (fault)`);
      return callback(smtpError(421, '4.3.2 Service not available, closing transmission channel'));
    }
    counters.sessions += 1;
    sessions.set(session.id, {
      id: session.id, connection: nextConnection++, port: portName, secure: !!session.secure,
      user: null, auth_method: null, mail_commands: 0, messages: [], commands: [],
      opened_at: new Date().toISOString(), closed_at: null,
    });
    log(`connection ${session.id} on ${portName} from ${session.remoteAddress}`);
    return callback();
  };
}

function onClose(session) {
  const s = sessions.get(session.id);
  if (s && !s.closed_at) {
    s.closed_at = new Date().toISOString();
    log(`connection ${session.id} closed`);
  }
}

function countAuth(method, ok) {
  const m = counters.auth.by_method[method] ||= { success: 0, failure: 0 };
  if (ok) { counters.auth.success += 1; m.success += 1; } else { counters.auth.failure += 1; m.failure += 1; }
}

function onAuth(auth, session, callback) {
  const done = (ok, user) => {
    countAuth(auth.method, ok);
    log(`auth ${auth.method} user=${JSON.stringify(auth.username)} ${ok ? 'ok' : 'failed'} (${session.id})`);
    const s = sessions.get(session.id);
    if (ok && s) { s.user = user; s.auth_method = auth.method; }
  };
  if (auth.method === 'PLAIN' || auth.method === 'LOGIN') {
    if (auth.password === PASSWORD) {
      done(true, auth.username);
      return callback(null, { user: auth.username });
    }
    done(false);
    return callback(smtpError(535, '5.7.8 Authentication credentials invalid'));
  }
  if (auth.method === 'XOAUTH2' && oauth) {
    introspect(auth.accessToken).then((info) => {
      if (info.active === true && info.username === auth.username) {
        done(true, auth.username);
        return callback(null, { user: auth.username });
      }
      done(false);
      // The error challenge of RFC 7628 / Google's XOAUTH2: the client answers an empty line.
      return callback(null, { data: { status: '401', schemes: 'bearer', scope: 'mail' } });
    });
    return undefined;
  }
  done(false);
  return callback(smtpError(504, '5.5.4 Unrecognized authentication type'));
}

function onMailFrom(address, session, callback) {
  counters.mail_commands += 1;
  const s = sessions.get(session.id);
  if (s) s.mail_commands += 1;
  if (faults.refuse_second_mail && s && s.mail_commands > 1) {
    counters.second_mail_refused += 1;
    return callback(smtpError(503, '5.5.1 Error: only one message per connection'));
  }
  return callback();
}

function onRcptTo(address, session, callback) {
  counters.rcpt_commands += 1;
  const rule = ruleFor(address.address);
  if (rule) {
    counters.rcpt_rejected += 1;
    return callback(smtpError(rule.code, rule.message));
  }
  return callback();
}

function onData(portName) {
  return (stream, session, callback) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      if (stream.sizeExceeded) {
        return callback(smtpError(552, `5.3.4 Message size exceeds fixed limit ${faults.size}`));
      }
      if (faults.drop_after_data > 0) {
        faults.drop_after_data -= 1;
        counters.dropped += 1;
        log(`connection ${session.id}: dropped after DATA (fault)`);
        const c = connectionOf(session);
        if (c) c._socket.destroy();
        return undefined;  // no reply: the connection is gone
      }
      if (faults.tempfail > 0) {
        faults.tempfail -= 1;
        counters.tempfailed += 1;
        return callback(smtpError(451, '4.3.0 Temporary local problem, try again later'));
      }
      store(Buffer.concat(chunks), session, portName, callback);
      return undefined;
    });
  };
}

function store(raw, session, portName, callback) {
  const seq = nextSeq++;
  const env = session.envelope;
  const s = sessions.get(session.id);
  const record = {
    seq, session_id: session.id, connection: s ? s.connection : 0, port: portName,
    secure: !!session.secure, tls_protocol: session.tlsOptions?.version || null,
    user: s ? s.user : null, auth_method: s ? s.auth_method : null,
    mail_from: env.mailFrom ? env.mailFrom.address : '',
    mail_params: env.mailFrom ? env.mailFrom.args || {} : {},
    rcpt_to: env.rcptTo.map((r) => r.address),
    size: raw.length, sha256: crypto.createHash('sha256').update(raw).digest('hex'),
    received_at: new Date().toISOString(),
    file: `spool/${seq}.eml`,
  };
  fs.writeFile(path.join(spoolDir, `${seq}.eml`), raw, (err) => {
    if (err) return callback(smtpError(451, `4.3.0 Spool write failed: ${err.code}`));
    fs.writeFile(path.join(spoolDir, `${seq}.json`), JSON.stringify(record) + '\n', (err2) => {
      if (err2) return callback(smtpError(451, `4.3.0 Spool write failed: ${err2.code}`));
      messages.push(record);
      counters.messages += 1;
      if (s) s.messages.push(seq);
      return callback(null, `2.0.0 Ok: queued as MB${seq}`);
    });
  });
}

// --- listeners -----------------------------------------------------------------------------
const tls = (name) => ({
  key: fs.readFileSync(path.join(dir, 'tls', `${name}.key`)),
  cert: fs.readFileSync(path.join(dir, 'tls', `${name}.pem`)),
  minVersion: 'TLSv1.2',
});
const common = (portName) => ({
  name: 'localhost', banner: 'mailbridge test SMTP server', logger: false,
  size: DEFAULT_SIZE, rejectOversized: true, disableReverseLookup: true, socketTimeout: 60000, closeTimeout: 2000,
  onConnect: onConnect(portName), onClose, onAuth, onMailFrom, onRcptTo,
  onData: onData(portName),
});
const listenerOptions = {
  submission: { ...common('submission'), ...tls('server'), secure: false,
    authMethods: baseAuthMethods(), allowInsecureAuth: false, authOptional: false },
  smtps: { ...common('smtps'), ...tls('server'), secure: true, authMethods: baseAuthMethods(),
    authOptional: false },
  relay: { ...common('relay'), ...tls('server'), secure: false, authOptional: true,
    disabledCommands: ['AUTH'] },
  mismatch: { ...common('mismatch'), ...tls('mismatch'), secure: true,
    authMethods: baseAuthMethods(), authOptional: false },
};
const listeners = new Map();

function listen(name) {
  return new Promise((resolve, reject) => {
    const server = new SMTPServer(listenerOptions[name]);
    server.on('error', (err) => log(`${name}: ${err.message}`));
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      listeners.set(name, { name, server, port: server.server.address().port });
      resolve();
    });
  });
}

// --- admin HTTP port -----------------------------------------------------------------------
function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve({});
      try { return resolve(JSON.parse(text)); } catch { return resolve(null); }
    });
  });
}

function setFaults(body) {
  const known = Object.keys(freshFaults());
  for (const [key, value] of Object.entries(body)) {
    if (!known.includes(key)) throw new Error(`unknown fault ${key}`);
    if (key === 'hide') {
      if (!Array.isArray(value) || value.some((v) => !HIDEABLE.includes(v))) {
        throw new Error(`hide takes a list of ${HIDEABLE.join(', ')}`);
      }
    }
    if (key === 'greet_delay_ms' && !(Number.isInteger(value) && value >= 0 && value <= 60000)) {
      throw new Error('greet_delay_ms takes 0–60000');
    }
    if (key === 'rcpt_rules') {
      if (!Array.isArray(value) || value.some((r) => typeof r.pattern !== 'string' ||
          !Number.isInteger(r.code) || typeof r.message !== 'string')) {
        throw new Error('rcpt_rules takes [{pattern, code, message}]');
      }
    }
    faults[key] = value;
  }
  applyFaultsToOptions();
}

function clearSpool() {
  for (const m of messages) {
    fs.rmSync(path.join(spoolDir, `${m.seq}.eml`), { force: true });
    fs.rmSync(path.join(spoolDir, `${m.seq}.json`), { force: true });
  }
  messages = [];
}

async function admin(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const send = (status, obj) => {
    const text = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(text);
  };
  const parts = url.pathname.split('/').filter(Boolean);
  const body = req.method === 'POST' ? await readBody(req) : {};
  if (body === null) return send(400, { error: 'body is not JSON' });
  if (req.method === 'GET' && url.pathname === '/health') {
    return send(200, { ok: true, ports: Object.fromEntries([...listeners].map(([k, v]) => [k, v.port])) });
  }
  if (req.method === 'GET' && url.pathname === '/messages') {
    const since = Number(url.searchParams.get('since') || 0);
    return send(200, { messages: messages.filter((m) => m.seq > since) });
  }
  if (parts[0] === 'messages' && parts.length >= 2 && req.method === 'GET') {
    const m = messages.find((r) => r.seq === Number(parts[1]));
    if (!m) return send(404, { error: 'no such message' });
    if (parts[2] === 'raw') {
      res.writeHead(200, { 'content-type': 'message/rfc822' });
      return res.end(fs.readFileSync(path.join(spoolDir, `${m.seq}.eml`)));
    }
    const raw = fs.readFileSync(path.join(spoolDir, `${m.seq}.eml`)).toString('utf8');
    return send(200, { ...m, raw });
  }
  if ((req.method === 'DELETE' && url.pathname === '/messages') ||
      (req.method === 'POST' && url.pathname === '/messages/clear')) {
    clearSpool();
    return send(200, { ok: true });
  }
  if (req.method === 'GET' && url.pathname === '/counters') return send(200, counters);
  if (req.method === 'GET' && url.pathname === '/sessions') return send(200, { sessions: [...sessions.values()] });
  if (req.method === 'GET' && url.pathname === '/faults') return send(200, faults);
  if (req.method === 'POST' && url.pathname === '/faults') {
    try { setFaults(body); } catch (err) { return send(400, { error: err.message }); }
    return send(200, faults);
  }
  if (req.method === 'POST' && url.pathname === '/reset') {
    // Everything back to the start: spool, counters, sessions and faults.
    clearSpool();
    counters = freshCounters();
    faults = freshFaults();
    sessions.clear();
    applyFaultsToOptions();
    return send(200, { ok: true });
  }
  return send(404, { error: `no route ${req.method} ${url.pathname}` });
}

async function main() {
  for (const name of Object.keys(listenerOptions)) await listen(name);
  applyFaultsToOptions();
  const adminServer = http.createServer((req, res) => {
    admin(req, res).catch((err) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err.message }));
    });
  });
  await new Promise((resolve) => adminServer.listen(0, '127.0.0.1', resolve));
  const info = {
    pid: process.pid,
    ports: Object.fromEntries([...listeners].map(([k, v]) => [k, v.port])),
    admin_port: adminServer.address().port,
    oauth: !!oauth,
  };
  fs.writeFileSync(path.join(dir, 'server.json.tmp'), JSON.stringify(info));
  fs.renameSync(path.join(dir, 'server.json.tmp'), path.join(dir, 'server.json'));
  log(`listening: ${JSON.stringify(info)}`);
  const shutdown = () => {
    for (const { server } of listeners.values()) server.close();
    adminServer.close();
    logStream.end(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err) => {
  console.error(`server.mjs: ${err.stack || err}`);
  process.exit(1);
});
