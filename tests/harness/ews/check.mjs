// File: tests/harness/ews/check.mjs — checks the running EWS stand-in against Microsoft's
// documented examples (tests/data/ews/doc-examples/*.json): for each, after its setup (mail
// delivered, folders made by CreateFolder, a fault injected), the documented request goes to
// the stand-in and its answer must have the example's HTTP status and shape — every
// element of the example present by local name, with its attributes, and leaf text of the
// same type (boolean, integer, other), recursively (values differ: ids, sync states, dates);
// `expect_values` are compared exactly, `expect_count` counts elements, `expect_sent` reads what
// a CreateItem sent (admin /sent); `path` sends to Autodiscover instead of EWS. Also the NTLM code against [MS-NLMP] §4.2's vectors,
// the three sign-ins (Basic, NTLM with its three messages on one connection, bearer when the
// stand-in has an Entra stand-in), impersonation and delegate access. CTest: harness.ews.check.
//
//   node check.mjs EWS_DIR FIXTURES_DIR
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import * as ntlm from './ntlm.mjs';
import { child, find, parseXml } from './xml.mjs';

const [dir, fixturesDir] = process.argv.slice(2);
if (!dir || !fixturesDir) {
  console.error('usage: node check.mjs EWS_DIR FIXTURES_DIR');
  process.exit(2);
}
const readEnv = (file) => Object.fromEntries(fs.readFileSync(file, 'utf8').split('\n')
  .filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
const env = readEnv(path.join(dir, 'env'));
const ca = fs.readFileSync(env.MB_EWS_CA_FILE);
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';

function request(url, { method = 'POST', headers = {}, body, agent = false, caFile = ca } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data) h['Content-Length'] = data.length;
    const req = lib.request(u, { method, headers: h, ca: caFile, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

const admin = async (route, body) => {
  const r = await request(`${env.MB_EWS_ADMIN_URL}${route}`, body === undefined ? { method: 'GET' }
    : { body, headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 200, `admin ${route}: ${r.text}`);
  return JSON.parse(r.text);
};

const basic = (user, password = env.MB_EWS_PASSWORD) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const soap = (xml, authorization, extra = {}) => request(env.MB_EWS_URL, {
  body: xml, headers: { 'Content-Type': 'text/xml; charset=utf-8', ...(authorization ? { Authorization: authorization } : {}), ...extra } });

const envelope = (body, header = '') => '<?xml version="1.0" encoding="utf-8"?>' +
  `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="${T}" xmlns:m="${M}">` +
  `<soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/>${header}</soap:Header><soap:Body>${body}</soap:Body></soap:Envelope>`;
const getFolder = (folderXml = '<t:DistinguishedFolderId Id="inbox"/>', header = '') => envelope(
  `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>${folderXml}</m:FolderIds></m:GetFolder>`, header);
const impersonate = (address) => `<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>${address}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`;
const responseCode = (text) => find(parseXml(text), 'ResponseCode')?.text.trim();

// ---- shape comparison ----

const kind = (text) => (/^(true|false)$/.test(text) ? 'boolean' : /^-?\d+$/.test(text) ? 'integer' : 'text');

function shapeErrors(doc, ours, where, lenient = {}) {
  const errs = [];
  for (const [name] of Object.entries(doc.attrs)) {
    if (!(name in ours.attrs)) errs.push(`${where}: attribute ${name} missing`);
  }
  if (!doc.children.length && doc.text.trim() && ours.text.trim() && kind(doc.text.trim()) !== kind(ours.text.trim())) {
    errs.push(`${where}: text "${ours.text.trim().slice(0, 40)}" is not ${kind(doc.text.trim())} like "${doc.text.trim()}"`);
  }
  const only = lenient.only?.[doc.name];
  for (const d of doc.children) {
    if (only && !only.includes(d.name)) continue;
    const name = lenient.rename?.[d.name] ?? d.name;
    const o = ours.children.find((c) => c.name === name);
    if (!o) {
      errs.push(`${where}/${d.name}: missing`);
      continue;
    }
    errs.push(...shapeErrors(lenient.rename?.[d.name] ? { ...d, name: d.name } : d, o, `${where}/${d.name}`, lenient));
  }
  return errs;
}

async function checkFixture(file) {
  const fx = JSON.parse(fs.readFileSync(path.join(fixturesDir, file), 'utf8'));
  let requestXml = fx.request;
  let delivered = [];
  const mailbox = `doc-${file.replace('.json', '')}-${Date.now()}@${env.MB_EWS_DOMAIN}`;
  await admin('/accounts', { upn: mailbox });
  if (fx.setup?.deliver) {
    const { folder, count } = fx.setup.deliver;
    const messages = Array.from({ length: count }, (_, i) => ({
      mime: `From: a@example.com\r\nTo: ${mailbox}\r\nSubject: ${file} ${i}\r\nMessage-ID: <${i}.${Date.now()}@check>\r\n\r\nbody ${i} ✓\r\n` }));
    delivered = (await admin('/deliver', { mailbox, folder, messages })).items;
    requestXml = requestXml.replace('{item_id}', delivered[0].id);
    delivered.mime = messages[0].mime;
  }
  for (const { parent, name } of fx.setup?.folders ?? []) {
    const made = await soap(envelope(`<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="${parent}"/></m:ParentFolderId>` +
      `<m:Folders><t:Folder><t:DisplayName>${name}</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>`), basic(mailbox));
    assert.equal(responseCode(made.text), 'NoError', `${file}: setup CreateFolder ${name}: ${made.text}`);
  }
  if (fx.setup?.fault) await admin('/faults', fx.setup.fault);
  if (fx.setup?.autodiscover) await admin('/autodiscover', fx.setup.autodiscover);
  requestXml = requestXml.replaceAll('{mailbox}', mailbox).replaceAll('{other}', `other-${Date.now()}@${env.MB_EWS_DOMAIN}`);
  const url = fx.path ? new URL(fx.path, env.MB_EWS_URL).href : env.MB_EWS_URL;
  const r = await request(url, { body: requestXml, headers: { 'Content-Type': 'text/xml; charset=utf-8', Authorization: basic(mailbox) } });
  assert.equal(r.status, fx.status, `${file}: status ${r.status}: ${r.text.slice(0, 400)}`);
  assert.match(String(r.headers['content-type']), /^text\/xml; charset=utf-8/, `${file}: content type`);
  const ours = parseXml(r.text);
  const errs = shapeErrors(parseXml(fx.body_xml), ours, '', fx.lenient);
  assert.deepEqual(errs, [], `${file}: the answer does not have the documented shape:\n${errs.join('\n')}\n${r.text}`);
  for (const [name, want] of Object.entries(fx.expect_values ?? {})) {
    assert.equal(find(ours, name)?.text.trim(), want, `${file}: ${name}`);
  }
  for (const [name, want] of Object.entries(fx.expect_count ?? {})) {
    const count = (el) => (el.name === name ? 1 : 0) + el.children.reduce((n, c) => n + count(c), 0);
    assert.equal(count(ours), want, `${file}: how many ${name}`);
  }
  if (fx.expect_sent) {  // CreateItem: what the stand-in recorded as sent
    const sent = await admin(`/sent?mailbox=${encodeURIComponent(mailbox)}`);
    assert.equal(sent.length, 1, `${file}: one message sent`);
    for (const [k, v] of Object.entries(fx.expect_sent)) assert.deepEqual(sent[0][k], v, `${file}: sent ${k}`);
  }
  if (file === 'get-item-mime.json') {
    const mime = Buffer.from(find(ours, 'MimeContent').text, 'base64').toString('utf8');
    assert.equal(mime, delivered.mime, 'GetItem MimeContent is the delivered MIME, byte for byte');
  }
  if (file === 'move-item.json') {
    const moved = find(ours, 'ItemId').attrs.Id;
    assert.notEqual(moved, delivered[0].id, 'a moved item has a new ItemId');
    const drafts = await admin(`/folder?mailbox=${encodeURIComponent(mailbox)}&folder=drafts`);
    assert.deepEqual(drafts.items.map((i) => i.id), [moved], 'the item is in Drafts under its new id');
  }
  console.log(`ok ${file} (${fx.source})`);
}

// ---- sign-in ----

async function checkBasic() {
  const none = await soap(getFolder());
  assert.equal(none.status, 401);
  const offered = [].concat(none.headers['www-authenticate']).join(' | ');
  for (const s of ['Negotiate', 'NTLM', 'Basic']) assert.match(offered, new RegExp(s), `401 offers ${s}`);
  assert.equal((await soap(getFolder(), basic(env.MB_EWS_USER))).status, 200, 'Basic with the password');
  assert.equal((await soap(getFolder(), basic(`${env.MB_EWS_NETBIOS}\\helpdesk`))).status, 200, 'Basic as DOMAIN\\user');
  assert.equal((await soap(getFolder(), basic(env.MB_EWS_USER, 'wrong'))).status, 401, 'Basic with a wrong password');
  console.log('ok Basic');
}

// NTLM on one kept-alive connection, as IIS requires: negotiate → challenge → authenticate.
async function ntlmExchange(credentials, { v1 = false } = {}) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  try {
    const first = await request(env.MB_EWS_URL, { agent, body: '', headers: {
      'Content-Type': 'text/xml; charset=utf-8', Authorization: `NTLM ${ntlm.buildNegotiate().toString('base64')}` } });
    assert.equal(first.status, 401, 'negotiate → 401 with a challenge');
    const header = [].concat(first.headers['www-authenticate']).find((h) => /^NTLM \S+/.test(h));
    assert.ok(header, 'the 401 carries an NTLM challenge');
    const challenge = ntlm.parseChallenge(Buffer.from(header.slice(5), 'base64'));
    assert.ok(challenge.targetInfo.length > 4, 'the challenge carries target information (NTLMv2)');
    let auth = ntlm.buildAuthenticate(challenge, credentials);
    if (v1) {  // a 24-byte NT response: NTLMv1
      auth = Buffer.from(auth);
      auth.writeUInt16LE(24, 20);
      auth.writeUInt16LE(24, 22);
    }
    const second = await request(env.MB_EWS_URL, { agent, body: getFolder(), headers: {
      'Content-Type': 'text/xml; charset=utf-8', Authorization: `NTLM ${auth.toString('base64')}` } });
    let third = null;
    if (second.status === 200) {  // the connection stays signed in
      third = await request(env.MB_EWS_URL, { agent, body: getFolder(), headers: { 'Content-Type': 'text/xml; charset=utf-8' } });
    }
    return { second, third };
  } finally {
    agent.destroy();
  }
}

async function checkNtlm() {
  assert.equal(ntlm.selfTest(), true);
  console.log('ok NTLM code against [MS-NLMP] 4.2 (MD4, NTOWFv2, NTProofStr, the 4.2.4.3 AUTHENTICATE message)');
  const before = (await admin('/stats')).auth.ntlm;
  const good = await ntlmExchange({ user: 'helpdesk', domain: env.MB_EWS_NETBIOS, password: env.MB_EWS_PASSWORD });
  assert.equal(good.second.status, 200, `NTLM sign-in: ${good.second.text.slice(0, 300)}`);
  assert.equal(responseCode(good.second.text), 'NoError');
  assert.equal(good.third.status, 200, 'a later request on the signed-in connection needs no header');
  const upn = await ntlmExchange({ user: env.MB_EWS_USER, domain: '', password: env.MB_EWS_PASSWORD });
  assert.equal(upn.second.status, 200, 'NTLM with a UPN and no domain');
  const wrong = await ntlmExchange({ user: 'helpdesk', domain: env.MB_EWS_NETBIOS, password: 'wrong' });
  assert.equal(wrong.second.status, 401, 'NTLM with a wrong password');
  const v1 = await ntlmExchange({ user: 'helpdesk', domain: env.MB_EWS_NETBIOS, password: env.MB_EWS_PASSWORD }, { v1: true });
  assert.equal(v1.second.status, 401, 'an NTLMv1 response is refused');
  const after = (await admin('/stats')).auth.ntlm;
  assert.equal(after.negotiate - before.negotiate, 4);
  assert.equal(after.success - before.success, 2);
  assert.equal(after.failure - before.failure, 2);
  console.log('ok NTLM (negotiate, challenge, authenticate; NTLMv2 only; wrong password refused)');
}

async function checkAccess() {
  const svc = basic(env.MB_EWS_SERVICE_ACCOUNT);
  const asHelpdesk = await soap(getFolder(undefined, impersonate(env.MB_EWS_USER)), svc);
  assert.equal(asHelpdesk.status, 200, `impersonation by the service account: ${asHelpdesk.text.slice(0, 300)}`);
  const denied = await soap(getFolder(undefined, impersonate(env.MB_EWS_SERVICE_ACCOUNT)), basic(env.MB_EWS_USER));
  assert.equal(denied.status, 500);
  assert.equal(responseCode(denied.text), 'ErrorImpersonateUserDenied');
  const nobody = await soap(getFolder(undefined, impersonate('nobody@elsewhere.example')), svc);
  assert.equal(responseCode(nobody.text), 'ErrorNonExistentMailbox');
  const empty = await soap(getFolder(undefined, '<t:ExchangeImpersonation><t:ConnectingSID/></t:ExchangeImpersonation>'), svc);
  assert.equal(responseCode(empty.text), 'ErrorInvalidExchangeImpersonationHeaderData');
  const mailboxFolder = `<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>${env.MB_EWS_USER}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>`;
  const delegate = await soap(getFolder(mailboxFolder), basic(env.MB_EWS_DELEGATE));
  assert.equal(responseCode(delegate.text), 'NoError', 'FullAccess delegate');
  const noRight = await soap(getFolder(mailboxFolder), svc);
  assert.equal(noRight.status, 200);
  assert.equal(responseCode(noRight.text), 'ErrorAccessDenied', 'delegate access without FullAccess');
  console.log('ok ExchangeImpersonation (role, unknown mailbox, bad header) and delegate access (FullAccess)');
}

async function checkBearer() {
  if (env.MB_EWS_BEARER !== '1') {
    console.log('skip bearer: the stand-in runs without an Entra stand-in');
    return;
  }
  const entra = readEnv(path.join(env.MB_EWS_ENTRA_DIR, 'env'));
  const token = async (scope) => {
    const r = await request(entra.MB_ENTRA_TOKEN_URL, { caFile: fs.readFileSync(entra.MB_ENTRA_CA_FILE),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: entra.MB_ENTRA_APP_ID,
        client_secret: entra.MB_ENTRA_APP_SECRET, scope }).toString() });
    assert.equal(r.status, 200, r.text);
    return `Bearer ${JSON.parse(r.text).access_token}`;
  };
  const exchange = await token('https://outlook.office365.com/.default');
  const noHeader = await soap(getFolder(), exchange);
  assert.equal(responseCode(noHeader.text), 'ErrorInvalidExchangeImpersonationHeaderData', 'app-only needs ExchangeImpersonation');
  const ok = await soap(getFolder(undefined, impersonate(env.MB_EWS_USER)), exchange, { 'X-AnchorMailbox': env.MB_EWS_USER });
  assert.equal(ok.status, 200, ok.text.slice(0, 300));
  const graph = await soap(getFolder(undefined, impersonate(env.MB_EWS_USER)), await token('https://graph.microsoft.com/.default'));
  assert.equal(graph.status, 401, 'a Graph token is refused');
  assert.match(String(graph.headers['x-ms-diagnostics']), /^2000001;reason=/);
  console.log('ok bearer (app-only with full_access_as_app, impersonation required, wrong audience refused)');
}

const files = fs.readdirSync(fixturesDir).filter((f) => f.endsWith('.json')).sort();
assert.ok(files.length >= 19, 'the fixtures are there');
for (const f of files) await checkFixture(f);
await checkBasic();
await checkNtlm();
await checkAccess();
await checkBearer();
const unserved = await admin('/faults');
assert.deepEqual(unserved.faults, [], 'every injected fault was served');
console.log('all EWS stand-in checks passed');
