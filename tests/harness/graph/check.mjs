// File: tests/harness/graph/check.mjs — checks the running Graph stand-in against the
// documentation's examples (tests/data/graph/doc-examples/*.json): for each, the same request
// goes to the stand-in and its answer must have the example's status, headers and shape
// (every property of the example present with the same JSON type, recursively; arrays: each
// example element matched by some element of the answer). Also the token, permission,
// policy, throttling and fault behaviour the README promises. CTest: harness.graph.check.
//
//   node check.mjs GRAPH_DIR FIXTURES_DIR
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

const [dir, fixturesDir] = process.argv.slice(2);
if (!dir || !fixturesDir) {
  console.error('usage: node check.mjs GRAPH_DIR FIXTURES_DIR');
  process.exit(2);
}
const readEnv = (file) => Object.fromEntries(fs.readFileSync(file, 'utf8').split('\n')
  .filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
const env = readEnv(path.join(dir, 'env'));
const entra = readEnv(path.join(env.MB_GRAPH_ENTRA_DIR, 'env'));
const graphCa = fs.readFileSync(env.MB_GRAPH_CA_FILE);
const entraCa = fs.readFileSync(entra.MB_ENTRA_CA_FILE);
const fixture = (name) => JSON.parse(fs.readFileSync(path.join(fixturesDir, `${name}.json`), 'utf8'));

// ---- HTTP ----

function request(url, { method = 'GET', headers = {}, body, ca = graphCa } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data && !h['Content-Type']) h['Content-Type'] = 'application/json';
    if (data) h['Content-Length'] = data.length;
    const req = lib.request(u, { method, headers: h, ca, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        let json = null;
        if ((res.headers['content-type'] ?? '').includes('json') && raw.length) json = JSON.parse(raw.toString('utf8'));
        resolve({ status: res.statusCode, headers: res.headers, raw, json });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function token(appId, secret) {
  const r = await request(entra.MB_ENTRA_TOKEN_URL, { method: 'POST', ca: entraCa,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: appId, client_secret: secret,
      scope: 'https://graph.microsoft.com/.default' }).toString() });
  assert.equal(r.status, 200, `token: ${r.raw}`);
  return r.json.access_token;
}

const admin = async (route, body) => {
  const r = await request(`${env.MB_GRAPH_ADMIN_URL}${route}`, body === undefined ? {} : { method: 'POST', body });
  assert.equal(r.status, 200, `admin ${route}: ${r.raw}`);
  return r.json;
};

// ---- shape comparison ----

function shapeErrors(doc, ours, where, lenient = {}) {
  if (doc === null) return [];
  const key = where.replace(/\[\d+\]/g, '[]');
  if (Array.isArray(doc)) {
    if (!Array.isArray(ours)) return [`${where}: expected an array, got ${JSON.stringify(ours)}`];
    if (doc.length && !ours.length) return [`${where}: expected elements, got none`];
    const errs = [];
    doc.forEach((d, i) => {
      const matched = ours.some((o) => shapeErrors(d, o, `${where}[]`, lenient).length === 0);
      if (!matched) errs.push(`${where}[${i}]: no element of the answer has the example's shape: ${shapeErrors(d, ours[0], `${where}[]`, lenient).join('; ')}`);
    });
    return errs;
  }
  if (typeof doc === 'object') {
    if (typeof ours !== 'object' || ours === null || Array.isArray(ours)) return [`${where}: expected an object`];
    return Object.keys(doc).flatMap((k) => (k in ours ? shapeErrors(doc[k], ours[k], `${where}.${k}`, lenient)
      : [`${where}.${k}: missing`]));
  }
  const want = lenient[key.replace(/^body\./, '')] ?? typeof doc;
  return typeof ours === want ? [] : [`${where}: expected ${want}, got ${JSON.stringify(ours)}`];
}

function assertShape(name, r, extra = () => {}) {
  const f = fixture(name);
  if (typeof f.status === 'number') assert.equal(r.status, f.status, `${name}: status ${r.status}: ${r.raw}`);
  for (const [h, v] of Object.entries(f.headers ?? {})) {
    const got = r.headers[h.toLowerCase()];
    assert.ok(got !== undefined, `${name}: header ${h} missing`);
    if (h.toLowerCase() === 'content-type') assert.ok(got.startsWith(v), `${name}: ${h} ${got}, expected ${v}`);
    if (h.toLowerCase() === 'content-length') assert.equal(got, v, `${name}: ${h}`);
  }
  if (f.body === null) assert.equal(r.raw.length, 0, `${name}: expected no body, got ${r.raw}`);
  else if (f.body) {
    const errs = shapeErrors(f.body, r.json, 'body', f.lenient ?? {});
    assert.deepEqual(errs, [], `${name} (${f.source}):\n${errs.join('\n')}\nanswer: ${r.raw.toString('utf8').slice(0, 2000)}`);
  }
  extra(f);
  passed.push(name);
}

const passed = [];
const mime = (n, extra = '') => `From: "Dana Swope" <danas@contoso.com>\r\nTo: support@contoso.com\r\nSubject: check ${n}\r\n` +
  `Message-ID: <check-${n}-${crypto.randomUUID()}@example.com>\r\nDate: Mon, 23 Nov 2026 10:00:0${n % 10} +0000\r\n${extra}\r\nbody ${n}\r\n`;

// ---- scenarios ----

// Tokens, the test user and request helpers shared by the scenarios.
async function setup() {
  const tok = await token(entra.MB_ENTRA_APP_ID, entra.MB_ENTRA_APP_SECRET);
  const noSend = await token(entra.MB_ENTRA_NOIMAP_APP_ID, entra.MB_ENTRA_NOIMAP_APP_SECRET);
  const user = `check-${crypto.randomBytes(4).toString('hex')}@${env.MB_GRAPH_DOMAIN}`;
  const base = `${env.MB_GRAPH_URL}/v1.0/users/${encodeURIComponent(user)}`;
  const auth = (extra = {}, t = tok) => ({ Authorization: `Bearer ${t}`, ...extra });
  const g = (url, opts = {}) => request(url.startsWith('http') ? url : `${base}${url}`,
    { ...opts, headers: auth(opts.headers ?? {}, opts.token) });
  await admin('/faults/clear', {});
  await admin('/settings', { latency_ms: 0, mailbox_concurrency: 4, revoked_before: 0 });
  const delivered = [];
  for (let i = 1; i <= 5; i++) delivered.push(await admin('/deliver', { user, mime: mime(i) }));
  return { tok, noSend, user, base, g, delivered };
}

// Delta, round 1 in pages of 2 with $select; round 2 after a DELETE and a PATCH; a reset.
async function deltaRounds({ g, user, delivered }) {
  const prefer = { Prefer: 'odata.maxpagesize=2' };
  let r = await g('/mailFolders/inbox/messages/delta?$select=subject,sender,isRead', { headers: prefer });
  assertShape('delta-first-page', r, () => {
    assert.equal(r.json.value.length, 2);
    assert.match(r.json['@odata.nextLink'], /\$skiptoken=/);
    assert.ok(!('@odata.deltaLink' in r.json));
    assert.match(r.headers['preference-applied'] ?? '', /odata\.maxpagesize=2/);
    assert.ok(!('body' in r.json.value[0]), '$select left out body');
  });
  const seen = new Set(r.json.value.map((m) => m.id));
  while (r.json['@odata.nextLink']) {
    r = await g(r.json['@odata.nextLink'], { headers: prefer });
    assert.equal(r.status, 200, String(r.raw));
    r.json.value.forEach((m) => seen.add(m.id));
  }
  assertShape('delta-last-page', r, () => {
    assert.equal(r.json.value.length, 1);
    assert.match(r.json['@odata.deltaLink'], /\$deltatoken=/);
    assert.equal(seen.size, 5, 'the first round lists every message once');
  });
  const deltaLink = r.json['@odata.deltaLink'];
  assert.equal((await g(`/messages/${delivered[0].id}`, { method: 'DELETE' })).status, 204);
  r = await g(`/messages/${delivered[1].id}`, { method: 'PATCH', body: { isRead: true } });
  assert.equal(r.status, 200, String(r.raw));
  assert.equal(r.json.isRead, true);
  r = await g(deltaLink, { headers: prefer });
  assertShape('delta-next-round', r, () => {
    assert.equal(r.json.value.length, 2);
    assert.deepEqual(r.json.value.find((m) => m['@removed']), { '@odata.type': '#microsoft.graph.message',
      id: delivered[0].id, '@removed': { reason: 'deleted' } });
    assert.equal(r.json.value.find((m) => !m['@removed']).id, delivered[1].id);
  });
  const deleted = await admin(`/folder?user=${encodeURIComponent(user)}&folder=deleteditems`);
  assert.equal(deleted.messages.length, 1, 'DELETE moves the message to Deleted Items');
  await admin('/delta/invalidate', { user });
  r = await g(deltaLink);
  assertShape('delta-sync-state-gone', r, () => {
    assert.match(r.headers.location ?? '', /\/messages\/delta$/);
  });
}

// List with $select and $filter; move with and without immutable ids; folders; $value; errors.
async function messagesAndFolders({ g, user, delivered }) {
  let r = await g('/messages?$select=sender,subject');
  assertShape('list-messages-select', r, () => {
    assert.match(r.json['@odata.context'], /messages\(sender,subject\)$/);
    assert.ok(r.json.value.every((m) => Object.keys(m).sort().join() === '@odata.etag,id,sender,subject'));
  });
  r = await g('/mailFolders/inbox/messages?$filter=isRead eq false&$top=2');
  assert.equal(r.status, 200, String(r.raw));
  assert.equal(r.json.value.length, 2);
  assert.ok(r.json['@odata.nextLink'], 'three unread, pages of two');
  assert.ok(r.json.value.every((m) => m.isRead === false));

  // Move: a new id without ImmutableId, the same one with it.
  r = await g(`/messages/${delivered[2].id}/move`, { method: 'POST', body: { destinationId: 'deleteditems' } });
  assertShape('message-move', r, () => assert.notEqual(r.json.id, delivered[2].id));
  r = await g(`/messages/${delivered[3].immutable_id}/move`, { method: 'POST', body: { destinationId: 'archive' },
    headers: { Prefer: 'IdType="ImmutableId"' } });
  assert.equal(r.status, 201, String(r.raw));
  assert.equal(r.json.id, delivered[3].immutable_id);
  assert.match(r.headers['preference-applied'] ?? '', /IdType="ImmutableId"/);
  assert.equal((await g(`/messages/${delivered[2].id}`)).status, 404, 'the old REST id is gone after a move');

  // Folders.
  const inbox = (await g('/mailFolders/inbox')).json;
  assert.equal(inbox.displayName, 'Inbox');
  assert.equal((await g('/mailFolders/inbox/childFolders', { method: 'POST', body: { displayName: 'Internal Screens' } })).status, 201);
  assert.equal((await g('/mailFolders/inbox/childFolders', { method: 'POST', body: { displayName: 'Clutters', isHidden: true } })).status, 201);
  r = await g('/mailFolders/inbox/childFolders', { method: 'POST', body: { displayName: 'Internal Screens' } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'ErrorFolderExists');
  r = await g(`/mailFolders/${inbox.id}/childFolders?includeHiddenFolders=true`);
  assertShape('list-childfolders', r, () => assert.equal(r.json.value.length, 2));
  r = await g(`/mailFolders/${inbox.id}/childFolders`);
  assert.deepEqual(r.json.value.map((f) => f.displayName), ['Internal Screens']);

  // $value.
  r = await g(`/messages/${delivered[4].id}/$value`);
  const stored = await admin(`/message?user=${encodeURIComponent(user)}&id=${encodeURIComponent(delivered[4].id)}`);
  assertShape('get-mime', r, () => assert.equal(r.raw.toString('utf8'), stored.mime));

  // Errors.
  r = await g('/messages/AAMkADdoesnotexistAAA=', { headers: { 'client-request-id': 'check-client-id' } });
  assertShape('error-body', r, () => {
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'ErrorItemNotFound');
    assert.equal(r.json.error.innerError['request-id'], r.headers['request-id']);
    assert.equal(r.json.error.innerError['client-request-id'], 'check-client-id');
    assert.equal(r.headers['client-request-id'], 'check-client-id');
  });

}

// A draft with a large attachment through an upload session; sending three ways.
async function draftsAndSending({ g, user, tok, noSend }) {
  let r;
  // Drafts and upload sessions.
  r = await g('/messages', { method: 'POST', body: { subject: 'with a large file', body: { contentType: 'Text', content: 'see attached' },
    toRecipients: [{ emailAddress: { address: 'bob@example.com' } }] } });
  assert.equal(r.status, 201, String(r.raw));
  const draft = r.json.id;
  r = await g(`/messages/${draft}/attachments/createUploadSession`, { method: 'POST',
    body: { AttachmentItem: { attachmentType: 'file', name: 'small', size: 1000 } } });
  assertShape('upload-too-small', r);
  const size = 3483322;
  const file = crypto.randomBytes(size);
  r = await g(`/messages/${draft}/attachments/createUploadSession`, { method: 'POST',
    body: { AttachmentItem: { attachmentType: 'file', name: 'flower', size } } });
  assertShape('create-upload-session', r);
  const uploadUrl = r.json.uploadUrl;
  const put = (from, to, headers = {}) => request(uploadUrl, { method: 'PUT', body: file.subarray(from, to + 1),
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${from}-${to}/${size}`, ...headers } });
  r = await put(0, 2097151, { Authorization: `Bearer ${tok}` });
  assert.equal(r.status, 401, 'an Authorization header on the upload URL is refused');
  r = await put(0, 2097151);
  assertShape('upload-first-range', r, () => assert.deepEqual(r.json.nextExpectedRanges, ['2097152']));
  r = await put(0, 100);
  assert.equal(r.status, 416, 'a range out of order');
  r = await put(2097152, size - 1);
  assertShape('upload-last-range', r, () => assert.match(r.headers.location, /\/Attachments\('[^']+'\)$/));
  r = await g(`/messages/${draft}/attachments`);
  assert.deepEqual(r.json.value.map((a) => [a.name, a.size]), [['flower', size]]);
  r = await g(`/messages/${draft}/attachments/createUploadSession`, { method: 'POST',
    body: { AttachmentItem: { attachmentType: 'file', name: 'cancelled', size } } });
  assertShape('upload-cancel', await request(r.json.uploadUrl, { method: 'DELETE' }));

  // Sending: the draft, sendMail with MIME and with JSON; Mail.Send required.
  assertShape('send-mail', await g(`/messages/${draft}/send`, { method: 'POST' }));
  const sendMime = Buffer.from('From: x@contoso.onmicrosoft.com\r\nTo: bob@example.com\r\nSubject: via mime\r\n\r\nhi\r\n').toString('base64');
  assertShape('send-mail', await g('/sendMail', { method: 'POST', body: sendMime, headers: { 'Content-Type': 'text/plain' } }));
  assertShape('send-mail', await g('/sendMail', { method: 'POST', body: { message: { subject: 'via json',
    body: { contentType: 'Text', content: 'hi' }, toRecipients: [{ emailAddress: { address: 'bob@example.com' } }] }, saveToSentItems: false } }));
  r = await g('/sendMail', { method: 'POST', body: { message: { subject: 'nobody' } } });
  assert.equal(r.json.error.code, 'ErrorInvalidRecipients');
  r = await g('/sendMail', { method: 'POST', body: sendMime, headers: { 'Content-Type': 'text/plain' }, token: noSend });
  assert.equal(r.status, 403);
  assert.deepEqual([r.json.error.code, r.json.error.message], ['ErrorAccessDenied', 'Access is denied. Check credentials and try again.']);
  const sent = (await admin(`/sent?user=${encodeURIComponent(user)}&mime=0`)).sent;
  assert.deepEqual(sent.map((s) => [s.via, s.subject, s.saveToSentItems]),
    [['draft', 'with a large file', true], ['mime', 'via mime', true], ['json', 'via json', false]]);
  assert.equal(sent[0].attachments[0].sha256, crypto.createHash('sha256').update(file).digest('hex'));

}

// Tokens, the application access policy, faults, the concurrency limit, revocation.
async function limits({ g, user, base, tok, delivered }) {
  let r;
  // Tokens, policy, faults, concurrency.
  r = await request(`${base}/mailFolders/inbox`);
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'InvalidAuthenticationToken');
  assert.match(r.headers['www-authenticate'] ?? '', /^Bearer realm="", authorization_uri=/);
  r = await request(`${base}/mailFolders/inbox`, { headers: { Authorization: `Bearer ${tok.slice(0, -4)}AAAA` } });
  assert.equal(r.status, 401, 'a bad signature');
  await admin('/policy', { user });
  r = await g('/mailFolders/inbox');
  assert.deepEqual([r.status, r.json.error.code], [403, 'ErrorAccessDenied']);
  assert.match(r.json.error.message, /AppOnly AccessPolicy/);
  await admin('/policy', { user, denied: false });
  await admin('/faults', { status: 429, count: 1, route: 'delta', retry_after: 2 });
  await admin('/faults', { status: 503, count: 1, route: '$value' });
  r = await g('/mailFolders/inbox/messages/delta');
  assert.deepEqual([r.status, r.headers['retry-after'], r.json.error.code], [429, '2', 'TooManyRequests']);
  r = await g(`/messages/${delivered[4].id}/$value`);
  assert.deepEqual([r.status, r.headers['retry-after'], r.json.error.code], [503, undefined, 'serviceNotAvailable']);
  assert.equal((await g('/mailFolders/inbox/messages/delta')).status, 200, 'a fault is served count times');
  await admin('/settings', { latency_ms: 300 });
  const many = await Promise.all(Array.from({ length: 6 }, () => g('/mailFolders/inbox')));
  await admin('/settings', { latency_ms: 0 });
  const throttled = many.filter((x) => x.status === 429);
  assert.ok(throttled.length >= 1 && throttled.length <= 2, `six at once, four allowed: ${many.map((x) => x.status)}`);
  assert.equal(throttled[0].json.error.code, 'ApplicationThrottled');
  const stats = await admin('/stats');
  assert.ok(stats.max_in_flight[user.toLowerCase()] >= 5);
  assert.ok(stats.by_route['GET /users/{user}/mailFolders/{folder}/messages/delta'] >= 5);
  await admin('/tokens/revoke', {});
  assert.equal((await g('/mailFolders/inbox')).status, 401, 'a revoked token');
  assert.equal((await g('/mailFolders/inbox', { token: await token(entra.MB_ENTRA_APP_ID, entra.MB_ENTRA_APP_SECRET) })).status, 200);
  await admin('/settings', { revoked_before: 0 });
}

async function main() {
  const t = await setup();
  await deltaRounds(t);
  await messagesAndFolders(t);
  await draftsAndSending(t);
  await limits(t);
  console.log(`graph stand-in check: ${passed.length} documented answers matched (${[...new Set(passed)].join(', ')}), behaviour checks passed`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
