// File: tests/harness/graph/api.mjs — the Microsoft Graph v1.0 mail API of the stand-in:
// users, mailFolders (well-known names, childFolders, create), messages (list, get, $value,
// PATCH, move, copy, DELETE, permanentDelete, delta with state tokens and @removed), drafts
// with attachments and upload sessions, send and sendMail. Each handler answers
// [status, body, headers]; server.mjs does authentication, faults, throttling and counting.
import crypto from 'node:crypto';

import { requirePermission } from './auth.mjs';
import { composeFromJson, summarize } from './mime.mjs';
import { GraphError, notFound } from './mailstore.mjs';
import {
  attachmentView, folderFilter, isoNow, messageFilter, messageId, messageView, newAttachmentId,
  extendedProperties, pageSize, parseExpand, parseSelect,
} from './odata.mjs';

const MB = 1024 * 1024;
export const UPLOAD_MIN = 3 * MB;       // below: POST the attachment instead
export const UPLOAD_MAX = 150 * MB;
export const UPLOAD_CHUNK_MAX = 4 * MB; // per PUT

const POLICY_MESSAGE = 'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.';

// "mailFolders('x')" → ["mailFolders", "x"]: Graph's links use the key-in-parentheses form.
export function splitPath(pathname) {
  const out = [];
  for (const raw of pathname.split('/').filter(Boolean)) {
    const m = /^([A-Za-z]+)\('(.*)'\)$/.exec(decodeURIComponent(raw));
    if (m) out.push(m[1], m[2].replace(/''/g, "'"));
    else out.push(decodeURIComponent(raw));
  }
  return out;
}

export class GraphApi {
  constructor(store, settings) {
    this.store = store;
    this.settings = settings;
    this.deltaStates = new Map();  // opaque token → round state
    this.uploads = new Map();      // session id → upload session
  }

  // Route template (for the counters) and handler of a /v1.0 request.
  route(method, segs) {
    if (segs[0] === 'me') {
      return { name: `${method} /me/...`, run: (ctx) => {
        if (!ctx.claims.upn) {
          throw new GraphError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
        }
        return this.route(method, ['users', ctx.claims.upn, ...segs.slice(1)]).run(ctx);
      } };
    }
    if (segs[0] !== 'users' || segs.length < 2) return null;
    const rest = segs.slice(2);
    const u = '/users/{user}';
    const m = (name, run) => ({ name: `${method} ${u}${name}`, run });
    const r0 = rest[0];
    if (rest.length === 0 && method === 'GET') return m('', (c) => this.getUser(c));
    if (r0 === 'sendMail' && rest.length === 1 && method === 'POST') return m('/sendMail', (c) => this.sendMail(c));
    if (r0 === 'mailFolders') return this.folderRoute(method, rest.slice(1), m);
    if (r0 === 'messages') return this.messagesRoute(method, rest.slice(1), m, '/messages', null);
    return null;
  }

  folderRoute(method, rest, m) {
    const f = '/mailFolders';
    if (rest.length === 0) {
      if (method === 'GET') return m(f, (c) => this.listFolders(c, 'msgfolderroot'));
      if (method === 'POST') return m(f, (c) => this.createFolder(c, 'msgfolderroot'));
      return null;
    }
    const ref = rest[0];
    if (rest.length === 1 && method === 'GET') return m(`${f}/{folder}`, (c) => this.getFolder(c, ref));
    if (rest[1] === 'childFolders') {
      if (rest.length === 2 && method === 'GET') return m(`${f}/{folder}/childFolders`, (c) => this.listFolders(c, ref));
      if (rest.length === 2 && method === 'POST') return m(`${f}/{folder}/childFolders`, (c) => this.createFolder(c, ref));
      if (rest.length === 3 && method === 'GET') return m(`${f}/{folder}/childFolders/{id}`, (c) => this.getFolder(c, rest[2], ref));
      return null;
    }
    if (rest[1] === 'messages') return this.messagesRoute(method, rest.slice(2), m, `${f}/{folder}/messages`, ref);
    return null;
  }

  messagesRoute(method, rest, m, base, folderRef) {
    if (rest.length === 0) {
      if (method === 'GET') return m(base, (c) => this.listMessages(c, folderRef));
      if (method === 'POST') return m(base, (c) => this.createMessage(c, folderRef ?? 'drafts'));
      return null;
    }
    if (rest[0] === 'delta' && rest.length === 1 && method === 'GET') {
      if (!folderRef) return m(`${base}/delta`, () => { throw new GraphError(400, 'ErrorInvalidRequest', 'Delta query is supported on the messages of one mail folder only.'); });
      return m(`${base}/delta`, (c) => this.delta(c, folderRef));
    }
    const id = rest[0];
    const t = `${base}/{id}`;
    const op = rest.slice(1);
    if (op.length === 0) {
      if (method === 'GET') return m(t, (c) => this.getMessage(c, id));
      if (method === 'PATCH') return m(t, (c) => this.updateMessage(c, id));
      if (method === 'DELETE') return m(t, (c) => this.deleteMessage(c, id));
      return null;
    }
    const one = op.length === 1;
    if (one && op[0] === '$value' && method === 'GET') return m(`${t}/$value`, (c) => this.mimeValue(c, id));
    if (one && method === 'POST') {
      const actions = { move: (c) => this.moveMessage(c, id, false), copy: (c) => this.moveMessage(c, id, true),
        send: (c) => this.sendDraft(c, id), permanentDelete: (c) => this.permanentDelete(c, id) };
      if (actions[op[0]]) return m(`${t}/${op[0]}`, actions[op[0]]);
    }
    if (op[0] === 'attachments') {
      if (one && method === 'GET') return m(`${t}/attachments`, (c) => this.listAttachments(c, id));
      if (one && method === 'POST') return m(`${t}/attachments`, (c) => this.addAttachment(c, id));
      if (op.length === 2 && op[1] === 'createUploadSession' && method === 'POST') {
        return m(`${t}/attachments/createUploadSession`, (c) => this.createUploadSession(c, id));
      }
      if (op.length === 2 && method === 'GET') return m(`${t}/attachments/{id}`, (c) => this.getAttachment(c, id, op[1]));
    }
    return null;
  }

  // ---- context helpers ----

  // The user of the request, after the permission and the application access policy checks.
  user(ctx, need) {
    requirePermission(ctx.claims, need);
    const user = this.store.user(ctx.segs[1] === 'me' ? ctx.claims.upn : ctx.segs[1]);
    if (user.policyDenied && !ctx.claims.scp) throw new GraphError(403, 'ErrorAccessDenied', POLICY_MESSAGE);
    return user;
  }

  view(ctx, user, msg, select = null, expand = null) {
    return { ...messageView(msg, { select, immutable: ctx.prefer.immutable, folder: user.folders.get(msg.folderId),
      headers: msg.props.headers, bodyType: ctx.prefer.bodyType }), ...extendedProperties(msg, expand) };
  }

  link(ctx, path, params) {
    const q = Object.entries(params).filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    return `${ctx.base}/v1.0${path}${q ? `?${q}` : ''}`;
  }

  context(ctx, suffix) { return `${ctx.base}/v1.0/$metadata#${suffix}`; }

  // ---- users and folders ----

  getUser(ctx) {
    requirePermission(ctx.claims, 'user');
    const u = this.store.user(ctx.segs[1]);
    return [200, {
      '@odata.context': this.context(ctx, 'users/$entity'), businessPhones: [],
      displayName: u.displayName, givenName: null, jobTitle: null, mail: u.upn,
      mobilePhone: null, officeLocation: null, preferredLanguage: 'en-US', surname: null,
      userPrincipalName: u.upn, id: u.id,
    }];
  }

  listFolders(ctx, parentRef) {
    const user = this.user(ctx, 'read');
    const parent = this.store.folder(user, parentRef);
    const filter = folderFilter(ctx.query.get('$filter'));
    const includeHidden = ctx.query.get('includeHiddenFolders') === 'true';
    const all = this.store.children(user, parent).filter((f) => (includeHidden || !f.isHidden) && filter(f));
    const size = pageSize(ctx.query, ctx.prefer);
    const skip = Number(ctx.query.get('$skip') ?? 0);
    const page = all.slice(skip, skip + size);
    const body = { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/mailFolders`) };
    if (skip + size < all.length) {
      body['@odata.nextLink'] = this.link(ctx, ctx.pathname, { ...Object.fromEntries(ctx.query), $skip: skip + size });
    }
    body.value = page.map((f) => this.store.folderView(user, f));
    return [200, body];
  }

  getFolder(ctx, ref, parentRef) {
    const user = this.user(ctx, 'read');
    const f = this.store.folder(user, ref);
    if (parentRef && f.parentId !== this.store.folder(user, parentRef).id) throw notFound();
    return [200, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/mailFolders/$entity`),
      ...this.store.folderView(user, f) }];
  }

  createFolder(ctx, parentRef) {
    const user = this.user(ctx, 'write');
    const parent = this.store.folder(user, parentRef);
    const f = this.store.createFolder(user, parent, ctx.json().displayName, ctx.json().isHidden);
    return [201, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/mailFolders/$entity`),
      ...this.store.folderView(user, f) }];
  }

  // ---- messages ----

  listMessages(ctx, folderRef) {
    const user = this.user(ctx, 'read');
    const select = parseSelect(ctx.query.get('$select'));
    const expand = parseExpand(ctx.query.get('$expand'));
    const filter = messageFilter(ctx.query.get('$filter'));
    let msgs = folderRef ? this.store.inFolder(user, this.store.folder(user, folderRef))
      : [...user.messages.values()];
    msgs = msgs.filter(filter);
    const order = (ctx.query.get('$orderby') ?? 'receivedDateTime desc').trim();
    const om = /^receivedDateTime(\s+(asc|desc))?$/i.exec(order);
    if (!om) throw new GraphError(400, 'ErrorInvalidUrlQuery', 'The $orderby expression is not supported.');
    const desc = (om[2] ?? 'asc').toLowerCase() === 'desc';
    msgs.sort((a, b) => (Date.parse(a.receivedDateTime) - Date.parse(b.receivedDateTime) || a.order - b.order) * (desc ? -1 : 1));
    const size = pageSize(ctx.query, ctx.prefer);
    const skip = Number(ctx.query.get('$skip') ?? 0);
    const page = msgs.slice(skip, skip + size);
    const body = { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/messages${select ? `(${select.join(',')})` : ''}`) };
    if (ctx.query.get('$count') === 'true') body['@odata.count'] = msgs.length;
    if (skip + size < msgs.length) {
      body['@odata.nextLink'] = this.link(ctx, ctx.pathname, { ...Object.fromEntries(ctx.query), $top: size, $skip: skip + size });
    }
    body.value = page.map((msg) => this.view(ctx, user, msg, select, expand));
    ctx.applied.push(...(ctx.prefer.maxPageSize ? [`odata.maxpagesize=${size}`] : []));
    return [200, body];
  }

  getMessage(ctx, id) {
    const user = this.user(ctx, 'read');
    const msg = this.store.message(user, id);
    const select = parseSelect(ctx.query.get('$select'));
    const expand = parseExpand(ctx.query.get('$expand'));
    return [200, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/messages/$entity`), '@odata.type': '#microsoft.graph.message',
      ...this.view(ctx, user, msg, select, expand) }];
  }

  // The stored MIME, streamed (server.mjs writes a Buffer body in chunks).
  mimeValue(ctx, id) {
    const user = this.user(ctx, 'read');
    const msg = this.store.message(user, id);
    return [200, msg.mime, { 'Content-Type': 'text/plain' }];  // as the documentation's example
  }

  updateMessage(ctx, id) {
    const user = this.user(ctx, 'write');
    const msg = this.store.message(user, id);
    const body = ctx.json();
    const writable = ['isRead', 'categories', 'importance', 'flag', 'inferenceClassification',
      'isDeliveryReceiptRequested', 'isReadReceiptRequested'];
    const draftOnly = ['subject', 'body', 'toRecipients', 'ccRecipients', 'bccRecipients', 'replyTo', 'from', 'internetMessageHeaders'];
    for (const [k, v] of Object.entries(body)) {
      if (k.startsWith('@odata')) continue;
      if (writable.includes(k)) {
        if (k === 'isRead' && typeof v !== 'boolean') {
          throw new GraphError(400, 'RequestBodyRead', `Cannot convert the literal '${v}' to the expected type 'Edm.Boolean'.`);
        }
        msg[k] = v;
      } else if (draftOnly.includes(k) && msg.isDraft) {
        msg.draft = { ...(msg.draft ?? {}), [k]: v };
      } else if (!draftOnly.includes(k)) {
        throw new GraphError(400, 'RequestBodyRead', `The property '${k}' does not exist on type 'microsoft.graph.message'. Make sure to only use property names that are defined by the type or mark the type as open type.`);
      }
    }
    if (msg.isDraft && msg.draft) this.recompose(user, msg);
    this.store.touch(msg);
    return [200, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/messages/$entity`), '@odata.type': '#microsoft.graph.message',
      ...this.view(ctx, user, msg) }];
  }

  moveMessage(ctx, id, copy) {
    const user = this.user(ctx, 'write');
    const msg = this.store.message(user, id);
    const dest = ctx.json().destinationId;
    if (!dest) throw new GraphError(400, 'ErrorInvalidParameter', "The value of the parameter 'DestinationId' is empty.");
    const folder = this.store.folder(user, dest);
    const out = copy ? this.store.add(user, folder, msg.mime, { isRead: msg.isRead, isDraft: msg.isDraft,
      receivedDateTime: msg.receivedDateTime }) : this.store.move(user, msg, folder);
    return [201, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/messages/$entity`), '@odata.type': '#microsoft.graph.message',
      ...this.view(ctx, user, out) }];
  }

  deleteMessage(ctx, id) {
    const user = this.user(ctx, 'write');
    this.store.remove(user, this.store.message(user, id));
    return [204, null];
  }

  permanentDelete(ctx, id) {
    const user = this.user(ctx, 'write');
    this.store.purge(user, this.store.message(user, id));
    return [204, null];
  }

  // ---- delta ----

  delta(ctx, folderRef) {
    const user = this.user(ctx, 'read');
    const folder = this.store.folder(user, folderRef);
    const token = ctx.query.get('$deltatoken') ?? ctx.query.get('$skiptoken');
    let state;
    if (token !== null) {
      state = this.deltaStates.get(token);
      if (!state || state.userId !== user.id || state.folderId !== folder.id || state.epoch !== user.deltaEpoch) {
        const code = user.resyncCode ?? 'syncStateNotFound';
        const fresh = this.link(ctx, `/users/${encodeURIComponent(ctx.segs[1])}/mailFolders/${encodeURIComponent(folderRef)}/messages/delta`, {});
        throw new GraphError(410, code, code === 'resyncRequired'
          ? 'Resync required. Replace any local cached data with a full synchronization of the collection.'
          : 'The sync state cannot be found. It may have expired or been deleted; start a new synchronization.',
        { Location: fresh });
      }
      // A deltaLink starts a new round: it sees what changed up to now.
      if (state.kind === 'delta') state = { ...state, kind: 'skip', upper: this.store.seq };
    } else {
      state = { userId: user.id, folderId: folder.id, epoch: user.deltaEpoch, since: 0, cursor: 0,
        upper: this.store.seq, kind: 'skip',
        initial: true, select: parseSelect(ctx.query.get('$select')),
        // The query of the first request is kept in the state behind every link of the round.
        expand: parseExpand(ctx.query.get('$expand')),
        changeType: ctx.query.get('changeType'), top: ctx.query.get('$top') };
      if (state.changeType && !['created', 'updated', 'deleted'].includes(state.changeType)) {
        throw new GraphError(400, 'ErrorInvalidUrlQuery', `The value '${state.changeType}' of the changeType parameter is invalid.`);
      }
    }
    const q = new URLSearchParams(state.top !== null && state.top !== undefined ? { $top: state.top } : {});
    const size = pageSize(q, ctx.prefer, { max: 1000, fallback: 10 });
    // A round is a snapshot: changes made while it is paged through (a message marked read
    // after its page) come in the next round, not again in this one.
    let items = this.store.changes(user, folder, state.cursor, { includeRemovals: !state.initial })
      .filter((it) => it.seq <= state.upper);
    if (state.changeType) items = items.filter((it) => this.changeTypeOf(it, state.since) === state.changeType);
    const page = items.slice(0, size);
    const body = { '@odata.context': this.context(ctx, 'Collection(message)') };
    const linkPath = `/users/${encodeURIComponent(ctx.segs[1])}/mailFolders('${folder.id}')/messages/delta`;
    if (items.length > size) {
      const next = this.saveState({ ...state, cursor: page[page.length - 1].seq });
      body['@odata.nextLink'] = this.link(ctx, linkPath, { $skiptoken: next });
    } else {
      const next = this.saveState({ ...state, since: state.upper, cursor: state.upper, initial: false, kind: 'delta' });
      body['@odata.deltaLink'] = this.link(ctx, linkPath, { $deltatoken: next });
    }
    body.value = page.map((it) => (it.removed
      ? { '@odata.type': '#microsoft.graph.message',
        id: ctx.prefer.immutable ? it.removed.immutableId : it.removed.restId,
        '@removed': { reason: it.removed.reason } }
      : { '@odata.type': '#microsoft.graph.message', ...this.view(ctx, user, it.message, state.select, state.expand) }));
    if (ctx.prefer.maxPageSize) ctx.applied.push(`odata.maxpagesize=${size}`);
    return [200, body];
  }

  changeTypeOf(item, since) {
    if (item.removed) return 'deleted';
    return item.message.arrivedSeq > since ? 'created' : 'updated';
  }

  saveState(state) {
    const token = crypto.randomBytes(24).toString('base64url');
    this.deltaStates.set(token, state);
    return token;
  }

  // ---- drafts, attachments, sending ----

  // POST /messages (JSON, or base64 MIME as text/plain): a draft in Drafts (or the folder).
  createMessage(ctx, folderRef) {
    const user = this.user(ctx, 'write');
    const folder = this.store.folder(user, folderRef);
    let msg;
    if (ctx.isMime()) {
      msg = this.store.add(user, folder, ctx.mime(), { isRead: true, isDraft: true });
    } else {
      const json = ctx.json();
      msg = this.store.add(user, folder, composeFromJson(json, user), { isRead: true, isDraft: true });
      msg.draft = json;
      for (const a of json.attachments ?? []) msg.attachments.push(this.attachmentFrom(a));
    }
    return [201, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/messages/$entity`), '@odata.type': '#microsoft.graph.message',
      ...this.view(ctx, user, msg) }];
  }

  attachmentFrom(a) {
    if (a['@odata.type'] && a['@odata.type'] !== '#microsoft.graph.fileAttachment') {
      throw new GraphError(400, 'ErrorInvalidParameter', 'Only file attachments are supported by the stand-in.');
    }
    if (typeof a.contentBytes !== 'string' || !a.name) {
      throw new GraphError(400, 'ErrorInvalidParameter', 'A file attachment needs name and contentBytes.');
    }
    return { id: newAttachmentId(), name: a.name, contentType: a.contentType ?? 'application/octet-stream',
      bytes: Buffer.from(a.contentBytes, 'base64'), isInline: Boolean(a.isInline), contentId: a.contentId,
      lastModifiedDateTime: isoNow() };
  }

  recompose(user, msg) {
    msg.mime = composeFromJson(msg.draft, user, msg.attachments);
    msg.props = summarize(msg.mime);
  }

  listAttachments(ctx, id) {
    const user = this.user(ctx, 'read');
    const msg = this.store.message(user, id);
    return [200, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/messages('${id}')/attachments`),
      value: msg.attachments.map(attachmentView) }];
  }

  getAttachment(ctx, id, aid) {
    const user = this.user(ctx, 'read');
    const a = this.store.message(user, id).attachments.find((x) => x.id === aid);
    if (!a) throw notFound();
    return [200, { ...attachmentView(a), contentBytes: a.bytes.toString('base64') }];
  }

  addAttachment(ctx, id) {
    const user = this.user(ctx, 'write');
    const msg = this.store.message(user, id);
    const a = this.attachmentFrom(ctx.json());
    if (a.bytes.length > UPLOAD_MIN) {
      throw new GraphError(413, 'ErrorAttachmentSizeLimitExceeded',
        'The attachment is larger than 3 MB; use an upload session (createUploadSession).');
    }
    msg.attachments.push(a);
    if (msg.draft) this.recompose(user, msg);
    this.store.touch(msg);
    return [201, { '@odata.context': this.context(ctx, `users('${ctx.segs[1]}')/messages('${id}')/attachments/$entity`),
      ...attachmentView(a) }];
  }

  // The uploadUrl is pre-authenticated by its authtoken; a PUT must not carry Authorization.
  createUploadSession(ctx, id) {
    const user = this.user(ctx, 'write');
    const msg = this.store.message(user, id);
    const item = ctx.json().AttachmentItem ?? ctx.json().attachmentItem;
    if (!item || item.attachmentType !== 'file' || !item.name || !Number.isInteger(item.size)) {
      throw new GraphError(400, 'ErrorInvalidParameter', 'AttachmentItem needs attachmentType "file", name and size.');
    }
    if (item.size < UPLOAD_MIN) {
      throw new GraphError(400, 'ErrorAttachmentSizeShouldNotBeLessThanMinimumSize', 'Attachment size must be greater than the minimum size.');
    }
    if (item.size > UPLOAD_MAX) {
      throw new GraphError(400, 'ErrorAttachmentSizeLimitExceeded', 'The attachment size exceeds the maximum of 150 MB.');
    }
    const sid = `AAMkAD${crypto.randomBytes(18).toString('base64url')}=`;
    const authtoken = crypto.randomBytes(32).toString('base64url');
    const expires = new Date(Date.now() + 15 * 60 * 1000).toISOString();
    this.uploads.set(sid, { sid, authtoken, userKey: user.upn.toLowerCase(), messageKey: msg.key,
      userId: user.id, messageId: messageId(msg, false),
      item, chunks: [], received: 0, expires });
    const uploadUrl = `${ctx.base}/api/v2.0/Users('${user.id}@${this.store.tenantId}')/Messages('${messageId(msg, false)}')/AttachmentSessions('${sid}')?authtoken=${authtoken}`;
    return [201, { '@odata.context': this.context(ctx, 'microsoft.graph.uploadSession'),
      uploadUrl, expirationDateTime: expires, nextExpectedRanges: ['0-'] }];
  }

  // PUT/DELETE on an uploadUrl (no bearer token: the URL's authtoken authorizes it).
  async upload(req, sid, authtoken, body, base) {
    const s = this.uploads.get(sid);
    if (req.headers.authorization) {
      return [401, { error: { code: 'InvalidAuthenticationToken', message: 'The upload URL is pre-authenticated; an Authorization header is not allowed.' } }];
    }
    if (!s || s.authtoken !== authtoken) return [404, { error: { code: 'ErrorItemNotFound', message: 'The upload session was not found or has expired.' } }];
    if (req.method === 'DELETE') {
      this.uploads.delete(sid);
      return [204, null];
    }
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(req.headers['content-range'] ?? '');
    if (!m) return [400, { error: { code: 'InvalidContentRange', message: 'The Content-Range header is missing or malformed.' } }];
    const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (total !== s.item.size || start !== s.received || end < start || end >= total ||
        body.length !== end - start + 1) {
      return [416, { error: { code: 'invalidRange', message: `Expected a fragment starting at ${s.received} of ${s.item.size} bytes.` } }];
    }
    if (body.length > UPLOAD_CHUNK_MAX) return [413, { error: { code: 'RequestEntityTooLarge', message: 'A fragment may hold at most 4 MB.' } }];
    s.chunks.push(body);
    s.received += body.length;
    if (s.received < total) {
      return [200, { '@odata.context': `${base}/api/v2.0/$metadata#Users('${s.userId}@${this.store.tenantId}')/Messages('${s.messageId}')/AttachmentSessions/$entity`,
        ExpirationDateTime: s.expires, nextExpectedRanges: [`${s.received}`] }];
    }
    this.uploads.delete(sid);
    const user = this.store.user(s.userKey);
    const msg = user.messages.get(s.messageKey);
    if (!msg) return [404, { error: { code: 'ErrorItemNotFound', message: 'The message of this upload session no longer exists.' } }];
    const a = { id: newAttachmentId(), name: s.item.name, contentType: s.item.contentType ?? 'application/octet-stream',
      bytes: Buffer.concat(s.chunks), isInline: Boolean(s.item.isInline), contentId: s.item.contentId,
      lastModifiedDateTime: isoNow() };
    msg.attachments.push(a);
    if (msg.draft) this.recompose(user, msg);
    this.store.touch(msg);
    return [201, null, { Location: `${base}/api/v2.0/Users('${user.id}@${this.store.tenantId}')/Messages('${msg.restId}')/Attachments('${a.id}')` }];
  }

  sendDraft(ctx, id) {
    const user = this.user(ctx, 'send');
    const msg = this.store.message(user, id);
    if (!msg.isDraft) throw new GraphError(400, 'ErrorInvalidOperation', 'Only a draft can be sent.');
    this.requireRecipients(msg.props);
    this.recordSent(user, msg.mime, { via: 'draft', saveToSentItems: true, attachments: msg.attachments });
    msg.isDraft = false;
    this.store.move(user, msg, this.store.folder(user, 'sentitems'));
    return [202, null];
  }

  // sendMail: JSON {message, saveToSentItems} or the MIME message in base64 (text/plain).
  sendMail(ctx) {
    const user = this.user(ctx, 'send');
    if (ctx.isMime()) {
      const mime = ctx.mime();
      this.requireRecipients(summarize(mime));
      this.recordSent(user, mime, { via: 'mime', saveToSentItems: true });
      return [202, null];
    }
    const json = ctx.json();
    if (!json.message || typeof json.message !== 'object') {
      throw new GraphError(400, 'ErrorInvalidParameter', "The value of the parameter 'Message' is empty.");
    }
    const attachments = (json.message.attachments ?? []).map((a) => this.attachmentFrom(a));
    const mime = composeFromJson(json.message, user, attachments);
    this.requireRecipients(summarize(mime));
    const save = json.saveToSentItems === undefined ? true : json.saveToSentItems === true || json.saveToSentItems === 'true';
    this.recordSent(user, mime, { via: 'json', saveToSentItems: save, attachments, json: json.message });
    return [202, null];
  }

  requireRecipients(p) {
    if (p.toRecipients.length + p.ccRecipients.length + p.bccRecipients.length === 0) {
      throw new GraphError(400, 'ErrorInvalidRecipients', "At least one recipient isn't valid., A message can't be sent because it contains no recipients.");
    }
  }

  recordSent(user, mimeIn, { via, saveToSentItems, attachments = [], json }) {
    let mime = mimeIn;
    // Exchange gives a message without Message-ID one of its own when it sends it.
    if (!summarize(mime).internetMessageId) {
      mime = Buffer.concat([Buffer.from(`Message-ID: <${crypto.randomUUID()}@graph-stand-in.${this.store.domain ?? 'contoso.onmicrosoft.com'}>\r\n`), mime]);
    }
    const p = summarize(mime);
    user.sent.push({
      via, saveToSentItems, at: isoNow(), subject: p.subject, internetMessageId: p.internetMessageId,
      from: p.from?.emailAddress?.address ?? null,
      to: p.toRecipients.map((r) => r.emailAddress.address),
      cc: p.ccRecipients.map((r) => r.emailAddress.address),
      bcc: p.bccRecipients.map((r) => r.emailAddress.address),
      attachments: attachments.map((a) => ({ name: a.name, contentType: a.contentType, size: a.bytes.length,
        sha256: crypto.createHash('sha256').update(a.bytes).digest('hex') })),
      json: json ?? null, mime: mime.toString('utf8'),
    });
    if (saveToSentItems && via !== 'draft') {
      this.store.add(user, this.store.folder(user, 'sentitems'), mime, { isRead: true });
    }
  }
}
