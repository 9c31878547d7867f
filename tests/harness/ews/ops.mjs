// File: tests/harness/ews/ops.mjs — the EWS stand-in's mailboxes and the operations it
// answers: GetFolder, SyncFolderItems (SyncState, MaxChangesReturned, IncludesLastItemInRange),
// FindItem (Shallow, IndexedPageItemView within EWSFindCountLimit, SortOrder on
// item:DateTimeReceived, a Restriction IsEqualTo on message:IsRead) and GetItem (IdOnly or
// Default shape, AdditionalProperties message:IsRead, IncludeMimeContent as base64), with the
// response codes Exchange gives. ops_write.mjs has the operations that change things.
import crypto from 'node:crypto';

import { error, EwsFault, operationResponse, success } from './soap.mjs';
import { child, children, escapeXml, find, textOf } from './xml.mjs';

export const WELL_KNOWN = ['msgfolderroot', 'inbox', 'sentitems', 'deleteditems', 'drafts', 'junkemail', 'outbox'];
const DISPLAY = { msgfolderroot: 'Top of Information Store', inbox: 'Inbox', sentitems: 'Sent Items',
  deleteditems: 'Deleted Items', drafts: 'Drafts', junkemail: 'Junk Email', outbox: 'Outbox' };
export const FIND_COUNT_LIMIT = 1000;  // EWSFindCountLimit without a restriction
const MAX_SYNC_CHANGES = 512;

const newId = (kind) => `AAMkAD${kind}${crypto.randomBytes(30).toString('base64')}`;
const changeKey = () => `CQAAABYAAA${crypto.randomBytes(9).toString('base64')}`;

// A response-message error inside an operation (HTTP 200), as opposed to an EwsFault.
export class ResponseError extends Error {
  constructor(code, text) { super(text ?? code); this.code = code; this.text = text; }
}

export class MailStore {
  constructor() {
    this.mailboxes = new Map();  // smtp address (lower case) -> mailbox
    this.folders = new Map();    // folder id -> folder
    this.items = new Map();      // item id -> item
  }

  mailbox(address) {
    const key = String(address).toLowerCase();
    let mb = this.mailboxes.get(key);
    if (!mb) {
      mb = { address: key, folders: new Map() };
      for (const name of WELL_KNOWN) {
        const f = { id: newId('Fold'), changeKey: changeKey(), name, display: DISPLAY[name], mailbox: mb, seq: 0, events: [] };
        mb.folders.set(name, f);
        this.folders.set(f.id, f);
      }
      this.mailboxes.set(key, mb);
    }
    return mb;
  }

  deliver(mb, folderName, mime, { isRead = false } = {}) {
    const folder = mb.folders.get(folderName);
    if (!folder) throw new Error(`no folder ${folderName}`);
    const raw = Buffer.isBuffer(mime) ? mime : Buffer.from(String(mime), 'utf8');
    const subject = /^Subject:[ \t]*(.*)$/mi.exec(raw.toString('latin1'))?.[1]?.trim() ?? '';
    const item = { id: newId('Item'), changeKey: changeKey(), folder, mime: raw, subject, isRead,
      received: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    this.items.set(item.id, item);
    folder.events.push({ seq: ++folder.seq, type: 'create', item });
    return item;
  }

  remove(item) {
    this.items.delete(item.id);
    item.folder.events.push({ seq: ++item.folder.seq, type: 'delete', item });
  }

  list(folder) {
    return [...this.items.values()].filter((i) => i.folder === folder);
  }
}

// ---- shapes ----

function itemXml(item, shape) {
  const mime = shape.mime ? `<t:MimeContent CharacterSet="UTF-8">${item.mime.toString('base64')}</t:MimeContent>` : '';
  const id = `<t:ItemId Id="${escapeXml(item.id)}" ChangeKey="${escapeXml(item.changeKey)}"/>`;
  const read = shape.additional?.includes('message:IsRead') ? `<t:IsRead>${item.isRead}</t:IsRead>` : '';
  if (shape.base === 'IdOnly') return `<t:Message>${mime}${id}${read}</t:Message>`;
  return `<t:Message>${mime}${id}<t:Subject>${escapeXml(item.subject)}</t:Subject><t:Sensitivity>Normal</t:Sensitivity>` +
    `<t:Size>${item.mime.length}</t:Size><t:DateTimeReceived>${item.received}</t:DateTimeReceived>` +
    `<t:HasAttachments>false</t:HasAttachments><t:IsRead>${item.isRead}</t:IsRead></t:Message>`;
}

function parseShape(el) {
  const base = textOf(child(el, 'BaseShape'));
  if (!['IdOnly', 'Default', 'AllProperties'].includes(base)) throw new EwsFault('ErrorSchemaValidation', { text: 'The request failed schema validation: BaseShape is required.' });
  const additional = children(child(el, 'AdditionalProperties'), 'FieldURI').map((f) => f.attrs.FieldURI);
  return { base, additional, mime: textOf(child(el, 'IncludeMimeContent')) === 'true' };
}

// ---- folder resolution, with impersonation and delegate access ----

// ctx: {store, caller (account), target (mailbox address of the call), canAccess(address)}
export function resolveFolder(ctx, el) {
  if (!el) throw new EwsFault('ErrorSchemaValidation', { text: 'The request failed schema validation: a folder id is required.' });
  if (el.name === 'FolderId') {
    const f = ctx.store.folders.get(el.attrs.Id);
    if (!f) throw new ResponseError(/^AAMkAD/.test(el.attrs.Id ?? '') ? 'ErrorFolderNotFound' : 'ErrorInvalidIdMalformed');
    if (!ctx.canAccess(f.mailbox.address)) throw new ResponseError('ErrorAccessDenied');
    return f;
  }
  if (el.name !== 'DistinguishedFolderId') throw new EwsFault('ErrorSchemaValidation');
  const delegate = textOf(find(child(el, 'Mailbox'), 'EmailAddress'));
  const address = delegate ?? ctx.target;
  if (delegate && !ctx.exists(delegate)) throw new ResponseError('ErrorNonExistentMailbox');
  if (!ctx.canAccess(address)) throw new ResponseError('ErrorAccessDenied');
  const f = ctx.store.mailbox(address).folders.get(String(el.attrs.Id).toLowerCase());
  if (!f) throw new EwsFault('ErrorSchemaValidation', { text: `The request failed schema validation: the value '${el.attrs.Id}' is not a DistinguishedFolderIdNameType.` });
  return f;
}

const firstFolder = (el) => el?.children.find((c) => c.name === 'FolderId' || c.name === 'DistinguishedFolderId');

// Runs `fn` for one response message, turning a ResponseError into an error message.
function oneMessage(op, fn, errorExtra = '') {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ResponseError) return error(op, err.code, { text: err.text, after: errorExtra });
    throw err;
  }
}

// ---- operations ----

function getFolder(ctx, req) {
  const ids = child(req, 'FolderIds')?.children ?? [];
  return operationResponse('GetFolder', ids.map((el) => oneMessage('GetFolder', () => {
    const f = resolveFolder(ctx, el);
    const items = ctx.store.list(f);
    return success('GetFolder', `<m:Folders><t:Folder><t:FolderId Id="${f.id}" ChangeKey="${f.changeKey}"/>` +
      `<t:DisplayName>${escapeXml(f.display)}</t:DisplayName><t:TotalCount>${items.length}</t:TotalCount>` +
      `<t:ChildFolderCount>0</t:ChildFolderCount><t:UnreadCount>${items.filter((i) => !i.isRead).length}</t:UnreadCount></t:Folder></m:Folders>`);
  })));
}

function encodeState(folder, seq) {
  return Buffer.from(JSON.stringify({ v: 1, f: folder.id, s: seq })).toString('base64');
}

function decodeState(folder, text) {
  if (!text) return 0;
  try {
    const st = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
    if (st.v === 1 && st.f === folder.id && Number.isInteger(st.s) && st.s >= 0 && st.s <= folder.seq) return st.s;
  } catch { /* below */ }
  throw new ResponseError('ErrorInvalidSyncStateData');
}

function syncFolderItems(ctx, req) {
  const shape = parseShape(child(req, 'ItemShape'));
  const max = Number(textOf(child(req, 'MaxChangesReturned')));
  if (!Number.isInteger(max) || max < 1 || max > MAX_SYNC_CHANGES) {
    throw new EwsFault('ErrorSchemaValidation', { text: 'The request failed schema validation: MaxChangesReturned must be 1 to 512.' });
  }
  const ignore = new Set(children(child(req, 'Ignore'), 'ItemId').map((e) => e.attrs.Id));
  const msg = oneMessage('SyncFolderItems', () => {
    const folder = resolveFolder(ctx, firstFolder(child(req, 'SyncFolderId')));
    const from = decodeState(folder, textOf(child(req, 'SyncState')));
    const pending = folder.events.filter((e) => e.seq > from && !ignore.has(e.item.id));
    const page = pending.slice(0, max);
    const last = page.length ? page.at(-1).seq : folder.seq;
    const itemId = (i) => `<t:ItemId Id="${escapeXml(i.id)}" ChangeKey="${escapeXml(i.changeKey)}"/>`;
    const changes = page.map((e) => {
      if (e.type === 'create') return `<t:Create>${itemXml(e.item, shape)}</t:Create>`;
      if (e.type === 'read') return `<t:ReadFlagChange>${itemId(e.item)}<t:IsRead>${e.item.isRead}</t:IsRead></t:ReadFlagChange>`;
      return `<t:Delete>${itemId(e.item)}</t:Delete>`;
    }).join('');
    return success('SyncFolderItems', `<m:SyncState>${encodeState(folder, last)}</m:SyncState>` +
      `<m:IncludesLastItemInRange>${pending.length <= max}</m:IncludesLastItemInRange><m:Changes>${changes}</m:Changes>`);
  }, '<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>');
  return operationResponse('SyncFolderItems', [msg]);
}

function findItem(ctx, req) {
  if (req.attrs.Traversal !== 'Shallow') throw new EwsFault('ErrorSchemaValidation', { text: 'The request failed schema validation: Traversal must be Shallow.' });
  const shape = parseShape(child(req, 'ItemShape'));
  const view = child(req, 'IndexedPageItemView');
  const offset = view ? Number(view.attrs.Offset ?? 0) : 0;
  const wanted = view ? Number(view.attrs.MaxEntriesReturned ?? FIND_COUNT_LIMIT) : FIND_COUNT_LIMIT;
  const folders = child(req, 'ParentFolderIds')?.children ?? [];
  return operationResponse('FindItem', folders.map((el) => oneMessage('FindItem', () => {
    const f = resolveFolder(ctx, el);
    const order = find(child(req, 'SortOrder'), 'FieldOrder');
    const ascending = order?.attrs.Order === 'Ascending' && child(order, 'FieldURI')?.attrs.FieldURI === 'item:DateTimeReceived';
    const restriction = child(req, 'Restriction');
    let all = ctx.store.list(f);
    if (restriction) {
      const eq = child(restriction, 'IsEqualTo');
      if (child(eq, 'FieldURI')?.attrs.FieldURI !== 'message:IsRead') throw new EwsFault('ErrorInvalidRestriction', { text: 'The stand-in restricts on message:IsRead only.' });
      const value = find(eq, 'Constant')?.attrs.Value;
      all = all.filter((i) => String(i.isRead) === value);
    }
    if (ascending) all.sort((a, b) => (a.received < b.received ? -1 : a.received > b.received ? 1 : 0));
    else all.reverse().sort((a, b) => (a.received < b.received ? 1 : a.received > b.received ? -1 : 0));
    const take = Math.min(wanted, FIND_COUNT_LIMIT);
    const page = all.slice(offset, offset + take);
    const lastInRange = offset + page.length >= all.length;
    const paging = view ? ` IndexedPagingOffset="${offset + page.length}"` : '';
    return success('FindItem', `<m:RootFolder${paging} TotalItemsInView="${all.length}" IncludesLastItemInRange="${lastInRange}">` +
      `<t:Items>${page.map((i) => itemXml(i, shape)).join('')}</t:Items></m:RootFolder>`);
  })));
}

function getItem(ctx, req) {
  const shape = parseShape(child(req, 'ItemShape'));
  const ids = children(child(req, 'ItemIds'), 'ItemId');
  return operationResponse('GetItem', ids.map((el) => oneMessage('GetItem', () => {
    const item = ctx.store.items.get(el.attrs.Id);
    if (!item) throw new ResponseError(/^AAMkAD/.test(el.attrs.Id ?? '') ? 'ErrorItemNotFound' : 'ErrorInvalidIdMalformed');
    if (!ctx.canAccess(item.folder.mailbox.address)) throw new ResponseError('ErrorAccessDenied');
    ctx.stats.mime_bytes += shape.mime ? item.mime.length : 0;
    return success('GetItem', `<m:Items>${itemXml(item, shape)}</m:Items>`);
  })));
}

export const OPERATIONS = { GetFolder: getFolder, SyncFolderItems: syncFolderItems, FindItem: findItem, GetItem: getItem };
