// File: tests/harness/graph/mailstore.mjs — the mailboxes the Graph stand-in serves: users,
// their folders (well-known and created), messages kept as raw MIME, the change sequence the
// delta query reads (with tombstones for what left a folder), and message ids in both of
// Exchange's forms: the default REST id, which changes when a message moves, and the
// immutable id (Prefer: IdType="ImmutableId"), which does not.
import crypto from 'node:crypto';

import { summarize } from './mime.mjs';

// Well-known folder names (learn.microsoft.com mailFolder resource type) and display names.
export const WELL_KNOWN = {
  msgfolderroot: 'Top of Information Store',
  inbox: 'Inbox',
  drafts: 'Drafts',
  sentitems: 'Sent Items',
  deleteditems: 'Deleted Items',
  junkemail: 'Junk Email',
  archive: 'Archive',
  outbox: 'Outbox',
  conversationhistory: 'Conversation History',
};

const isoNow = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
// Exchange ids look like base64 of a binary entry id; these are URL-safe base64 of a random
// or derived value behind Exchange's prefixes ("AAMkA…" REST ids, "AAkAL…" immutable ids).
const restId = (seed) => `AAMkAD${crypto.createHash('sha256').update(seed).digest('base64url').slice(0, 40)}AAA=`;
const immutableId = (seed) => `AAkALg${crypto.createHash('sha256').update(`imm:${seed}`).digest('base64url').slice(0, 40)}AAA=`;
const folderRestId = (seed) => `AAMkAGI2${crypto.createHash('sha256').update(`f:${seed}`).digest('base64url').slice(0, 30)}AAAAAEMAAA=`;

export class GraphError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export const notFound = () => new GraphError(404, 'ErrorItemNotFound',
  'The specified object was not found in the store.');

export class MailStore {
  constructor(tenantId) {
    this.tenantId = tenantId;
    this.users = new Map();   // lower-case upn → user
    this.byUserId = new Map(); // id → user
    this.seq = 0;
  }

  nextSeq() { return ++this.seq; }

  // ---- users and folders ----

  addUser({ upn, displayName }) {
    const key = upn.toLowerCase();
    if (this.users.has(key)) return this.users.get(key);
    const user = {
      id: crypto.randomUUID(), upn, displayName: displayName ?? upn.split('@')[0],
      policyDenied: false, folders: new Map(), messages: new Map(), ids: new Map(),
      tombstones: [], deltaEpoch: 0, sent: [], uploads: new Map(), nextKey: 1,
    };
    const root = this.makeFolder(user, 'msgfolderroot', null, WELL_KNOWN.msgfolderroot);
    for (const [name, display] of Object.entries(WELL_KNOWN)) {
      if (name !== 'msgfolderroot') this.makeFolder(user, name, root.id, display);
    }
    this.users.set(key, user);
    this.byUserId.set(user.id, user);
    return user;
  }

  // `/users/{id | userPrincipalName}`; Graph answers an unknown one with 404 ErrorInvalidUser.
  user(idOrUpn) {
    const u = this.users.get(String(idOrUpn).toLowerCase()) ?? this.byUserId.get(idOrUpn);
    if (!u) throw new GraphError(404, 'ErrorInvalidUser', `The requested user '${idOrUpn}' is invalid.`);
    return u;
  }

  makeFolder(user, wellKnown, parentId, displayName) {
    const id = folderRestId(`${user.upn}:${wellKnown ?? crypto.randomUUID()}`);
    const f = { id, wellKnown, displayName, parentId, isHidden: false };
    user.folders.set(id, f);
    return f;
  }

  // A folder by id or well-known name (case-insensitive, as Graph accepts them).
  folder(user, ref) {
    const f = user.folders.get(ref);
    if (f) return f;
    const lower = String(ref).toLowerCase();
    for (const x of user.folders.values()) if (x.wellKnown === lower) return x;
    throw new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
  }

  children(user, folder) {
    return [...user.folders.values()].filter((f) => f.parentId === folder.id);
  }

  createFolder(user, parent, displayName, isHidden = false) {
    if (!displayName || typeof displayName !== 'string') {
      throw new GraphError(400, 'ErrorInvalidParameter', 'The value of the parameter \'DisplayName\' is empty.');
    }
    const dup = this.children(user, parent).find((f) => f.displayName.toLowerCase() === displayName.toLowerCase());
    if (dup) throw new GraphError(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');
    const f = this.makeFolder(user, null, parent.id, displayName);
    f.isHidden = Boolean(isHidden);
    return f;
  }

  folderView(user, f) {
    const msgs = this.inFolder(user, f);
    return {
      id: f.id,
      displayName: f.displayName,
      parentFolderId: f.parentId ?? folderRestId(`${user.upn}:parent-of-root`),
      childFolderCount: this.children(user, f).length,
      unreadItemCount: msgs.filter((m) => !m.isRead).length,
      totalItemCount: msgs.length,
      sizeInBytes: msgs.reduce((n, m) => n + m.mime.length, 0),
      isHidden: f.isHidden,
    };
  }

  // ---- messages ----

  inFolder(user, f) {
    return [...user.messages.values()].filter((m) => m.folderId === f.id)
      .sort((a, b) => a.order - b.order);
  }

  // Adds raw MIME to a folder (new mail: unread unless told otherwise).
  add(user, folder, mime, { isRead = false, isDraft = false, receivedDateTime, extra = {} } = {}) {
    const key = `${user.id}:${user.nextKey++}`;
    const now = isoNow();
    const m = {
      key, order: user.nextKey, mime: Buffer.from(mime), folderId: folder.id, isRead, isDraft,
      moves: 0, version: 1, seq: this.nextSeq(), createdDateTime: now, lastModifiedDateTime: now,
      receivedDateTime: receivedDateTime ?? now, categories: [], importance: 'normal',
      flag: { flagStatus: 'notFlagged' }, attachments: [], conversationId: null, ...extra,
    };
    m.arrivedSeq = m.seq;
    m.props = summarize(m.mime);
    m.conversationId = `AAQkAD${crypto.createHash('sha1').update(m.props.subject.replace(/^(re|fw|fwd):\s*/i, '')).digest('base64url').slice(0, 20)}=`;
    m.immutableId = immutableId(key);
    this.assignRestId(user, m);
    user.ids.set(m.immutableId, m);
    user.messages.set(key, m);
    return m;
  }

  assignRestId(user, m) {
    if (m.restId) user.ids.delete(m.restId);
    m.restId = restId(`${m.key}:${m.moves}`);
    user.ids.set(m.restId, m);
  }

  message(user, id) {
    const m = user.ids.get(id);
    if (!m || !user.messages.has(m.key)) throw notFound();
    return m;
  }

  touch(m) {
    m.version++;
    m.seq = this.nextSeq();
    m.lastModifiedDateTime = isoNow();
  }

  // What a delta query of the folder reports as "@removed": the ids the message had there.
  tombstone(user, m, reason = 'deleted') {
    user.tombstones.push({ folderId: m.folderId, restId: m.restId, immutableId: m.immutableId,
      seq: this.nextSeq(), reason });
  }

  // Moves keep the immutable id and give a new REST id, as Exchange does.
  move(user, m, dest) {
    if (dest.id === m.folderId) return m;
    this.tombstone(user, m);
    m.folderId = dest.id;
    m.moves++;
    this.assignRestId(user, m);
    this.touch(m);
    m.arrivedSeq = m.seq;
    return m;
  }

  // DELETE moves to Deleted Items; from Deleted Items it leaves the mailbox (recoverable
  // items, not visible to the API).
  remove(user, m) {
    const deleted = this.folder(user, 'deleteditems');
    if (m.folderId !== deleted.id) return this.move(user, m, deleted);
    this.purge(user, m);
    return null;
  }

  purge(user, m) {
    this.tombstone(user, m);
    user.messages.delete(m.key);
    user.ids.delete(m.restId);
    user.ids.delete(m.immutableId);
  }

  // Changes (messages with seq > since) and removals of a folder, in sequence order.
  changes(user, folder, since, { includeRemovals }) {
    const items = this.inFolder(user, folder).filter((m) => m.seq > since)
      .map((m) => ({ seq: m.seq, message: m }));
    if (includeRemovals) {
      for (const t of user.tombstones) {
        if (t.folderId === folder.id && t.seq > since) items.push({ seq: t.seq, removed: t });
      }
    }
    return items.sort((a, b) => a.seq - b.seq);
  }
}
