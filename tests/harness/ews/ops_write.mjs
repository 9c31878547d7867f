// File: tests/harness/ews/ops_write.mjs — the EWS stand-in's operations that change a mailbox
// or find its folders: UpdateItem (SetItemField, ConflictResolution and ChangeKey checks,
// MessageDisposition required), MoveItem (the moved item gets a new ItemId; the source's
// SyncFolderItems reports a Delete, the target's a Create), DeleteItem (HardDelete,
// SoftDelete, MoveToDeletedItems — refused to a delegate with ErrorCannotDeleteObject, as the
// DeleteItem reference says), CreateFolder (ErrorFolderExists for a sibling of the same name,
// any case) and FindFolder (Shallow or Deep, IndexedPageFolderView within EWSFindCountLimit),
// answered as Microsoft's reference examples show (tests/data/ews/doc-examples/).
import crypto from 'node:crypto';

import { FIND_COUNT_LIMIT, ResponseError, resolveFolder } from './ops.mjs';
import { error, EwsFault, operationResponse, success } from './soap.mjs';
import { child, children, escapeXml, find, textOf } from './xml.mjs';

const newId = (kind) => `AAMkAD${kind}${crypto.randomBytes(30).toString('base64')}`;
const changeKey = () => `CQAAABYAAA${crypto.randomBytes(9).toString('base64')}`;
const schema = (text) => new EwsFault('ErrorSchemaValidation', { text: `The request failed schema validation: ${text}` });

// The folder a folder sits in: created folders know theirs, the well-known ones sit in the
// mailbox's msgfolderroot (which is the top).
export function parentOf(folder) {
  if (folder.parent) return folder.parent;
  return folder.name === 'msgfolderroot' ? null : folder.mailbox.folders.get('msgfolderroot');
}

export function childFolders(store, parent) {
  return [...store.folders.values()].filter((f) => f.mailbox === parent.mailbox && parentOf(f) === parent);
}

// A display-name path under msgfolderroot ("Inbox/Processed"), any case; null when missing.
export function folderByPath(store, mb, path) {
  let cur = mb.folders.get('msgfolderroot');
  for (const part of String(path).split('/').filter(Boolean)) {
    cur = childFolders(store, cur).find((f) => f.display.toLowerCase() === part.toLowerCase());
    if (!cur) return null;
  }
  return cur;
}

function itemFor(ctx, el) {
  const item = ctx.store.items.get(el?.attrs.Id);
  if (!item) throw new ResponseError(/^AAMkAD/.test(el?.attrs.Id ?? '') ? 'ErrorItemNotFound' : 'ErrorInvalidIdMalformed');
  if (!ctx.canAccess(item.folder.mailbox.address)) throw new ResponseError('ErrorAccessDenied');
  return item;
}

// One response message for each of `els`, errors as error messages.
function each(op, els, fn, errorExtra = '') {
  return operationResponse(op, els.map((el) => {
    try {
      return fn(el);
    } catch (err) {
      if (err instanceof ResponseError) return error(op, err.code, { text: err.text, after: errorExtra });
      throw err;
    }
  }));
}

// Moves `item` into `to`: a new item (new id) there, a Delete in the source's sync history.
export function moveItem(store, item, to) {
  store.remove(item);
  const moved = { ...item, id: newId('Item'), changeKey: changeKey(), folder: to };
  store.items.set(moved.id, moved);
  to.events.push({ seq: ++to.seq, type: 'create', item: moved });
  return moved;
}

const itemIdXml = (item) => `<t:ItemId Id="${escapeXml(item.id)}" ChangeKey="${escapeXml(item.changeKey)}"/>`;

const CONFLICT = ['NeverOverwrite', 'AutoResolve', 'AlwaysOverwrite'];
const DISPOSITION = ['SaveOnly', 'SendOnly', 'SendAndSaveCopy'];
const SETTABLE = { 'message:IsRead': 'IsRead' };

function updateItem(ctx, req) {
  const conflict = req.attrs.ConflictResolution ?? 'AutoResolve';
  if (!CONFLICT.includes(conflict)) throw schema(`ConflictResolution '${conflict}' is not valid.`);
  const disposition = req.attrs.MessageDisposition;
  if (disposition !== undefined && !DISPOSITION.includes(disposition)) throw schema(`MessageDisposition '${disposition}' is not valid.`);
  const changes = children(child(req, 'ItemChanges'), 'ItemChange');
  return each('UpdateItem', changes, (change) => {
    const idEl = child(change, 'ItemId');
    const item = itemFor(ctx, idEl);
    // Messages need a MessageDisposition (UpdateItem reference).
    if (!disposition) throw new ResponseError('ErrorMessageDispositionRequired', 'MessageDisposition attribute is required.');
    if (idEl.attrs.ChangeKey && idEl.attrs.ChangeKey !== item.changeKey && conflict !== 'AlwaysOverwrite') {
      if (conflict === 'NeverOverwrite') throw new ResponseError('ErrorIrresolvableConflict', 'The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.');
    }
    for (const set of children(child(change, 'Updates'), 'SetItemField')) {
      const uri = child(set, 'FieldURI')?.attrs.FieldURI;
      const field = SETTABLE[uri];
      if (!field) throw new ResponseError('ErrorInvalidPropertySet', `The stand-in cannot set ${uri}.`);
      const value = textOf(find(child(set, 'Message'), field));
      if (value !== 'true' && value !== 'false') throw schema(`${field} must be a boolean.`);
      const was = item.isRead;
      item.isRead = value === 'true';
      item.changeKey = changeKey();
      if (was !== item.isRead) item.folder.events.push({ seq: ++item.folder.seq, type: 'read', item });
    }
    return success('UpdateItem', `<m:Items><t:Message>${itemIdXml(item)}</t:Message></m:Items>` +
      '<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>');
  });
}

const firstFolder = (el) => el?.children.find((c) => c.name === 'FolderId' || c.name === 'DistinguishedFolderId');

function moveItems(ctx, req) {
  const ids = children(child(req, 'ItemIds'), 'ItemId');
  let to;
  let toError;
  try {
    to = resolveFolder(ctx, firstFolder(child(req, 'ToFolderId')));
  } catch (err) {
    if (!(err instanceof ResponseError)) throw err;
    toError = err;
  }
  return each('MoveItem', ids, (el) => {
    const item = itemFor(ctx, el);
    if (toError) throw toError;
    const moved = moveItem(ctx.store, item, to);
    return success('MoveItem', `<m:Items><t:Message>${itemIdXml(moved)}</t:Message></m:Items>`);
  }, '<m:Items/>');
}

const DELETE_TYPES = ['HardDelete', 'SoftDelete', 'MoveToDeletedItems'];

function deleteItems(ctx, req) {
  const type = req.attrs.DeleteType;
  if (!DELETE_TYPES.includes(type)) throw schema('The required attribute \'DeleteType\' is missing or not valid.');
  return each('DeleteItem', children(child(req, 'ItemIds'), 'ItemId'), (el) => {
    const item = itemFor(ctx, el);
    const mb = item.folder.mailbox;
    if (type === 'MoveToDeletedItems') {
      // A delegate must use MoveItem for that (DeleteItem operation reference).
      if (mb.address !== ctx.target) throw new ResponseError('ErrorCannotDeleteObject', 'The object cannot be deleted.');
      moveItem(ctx.store, item, mb.folders.get('deleteditems'));
    } else {
      ctx.store.remove(item);
    }
    return success('DeleteItem');
  });
}

function createFolder(ctx, req) {
  const folders = child(req, 'Folders')?.children ?? [];
  let parent;
  let parentError;
  try {
    parent = resolveFolder(ctx, firstFolder(child(req, 'ParentFolderId')));
  } catch (err) {
    if (!(err instanceof ResponseError)) throw err;
    parentError = err;
  }
  return each('CreateFolder', folders, (el) => {
    if (parentError) throw parentError;
    const name = textOf(child(el, 'DisplayName'));
    if (!name) throw schema('DisplayName is required.');
    if (childFolders(ctx.store, parent).some((f) => f.display.toLowerCase() === name.toLowerCase())) {
      throw new ResponseError('ErrorFolderExists', 'A folder with the specified name already exists.');
    }
    const f = { id: newId('Fold'), changeKey: changeKey(), name: undefined, display: name, mailbox: parent.mailbox,
      parent, seq: 0, events: [] };
    ctx.store.folders.set(f.id, f);
    return success('CreateFolder', `<m:Folders><t:Folder><t:FolderId Id="${f.id}" ChangeKey="${f.changeKey}"/></t:Folder></m:Folders>`);
  }, '<m:Folders/>');
}

function folderXml(ctx, f, base) {
  const id = `<t:FolderId Id="${f.id}" ChangeKey="${f.changeKey}"/>`;
  if (base === 'IdOnly') return `<t:Folder>${id}</t:Folder>`;
  const items = ctx.store.list(f);
  return `<t:Folder>${id}<t:DisplayName>${escapeXml(f.display)}</t:DisplayName><t:TotalCount>${items.length}</t:TotalCount>` +
    `<t:ChildFolderCount>${childFolders(ctx.store, f).length}</t:ChildFolderCount>` +
    `<t:UnreadCount>${items.filter((i) => !i.isRead).length}</t:UnreadCount></t:Folder>`;
}

function findFolder(ctx, req) {
  const traversal = req.attrs.Traversal;
  if (!['Shallow', 'Deep'].includes(traversal)) throw schema('Traversal must be Shallow or Deep.');
  const base = textOf(child(child(req, 'FolderShape'), 'BaseShape'));
  if (!['IdOnly', 'Default', 'AllProperties'].includes(base)) throw schema('BaseShape is required.');
  const view = child(req, 'IndexedPageFolderView');
  const offset = view ? Number(view.attrs.Offset ?? 0) : 0;
  const wanted = view ? Number(view.attrs.MaxEntriesReturned ?? FIND_COUNT_LIMIT) : FIND_COUNT_LIMIT;
  if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(wanted) || wanted < 1) throw schema('IndexedPageFolderView is not valid.');
  const parents = child(req, 'ParentFolderIds')?.children ?? [];
  return each('FindFolder', parents, (el) => {
    const parent = resolveFolder(ctx, el);
    const deep = (f) => childFolders(ctx.store, f).flatMap((c) => [c, ...deep(c)]);
    const all = traversal === 'Deep' ? deep(parent) : childFolders(ctx.store, parent);
    const page = all.slice(offset, offset + Math.min(wanted, FIND_COUNT_LIMIT));
    const last = offset + page.length >= all.length;
    const paging = view ? ` IndexedPagingOffset="${offset + page.length}"` : '';
    return success('FindFolder', `<m:RootFolder${paging} TotalItemsInView="${all.length}" IncludesLastItemInRange="${last}">` +
      `<t:Folders>${page.map((f) => folderXml(ctx, f, base)).join('')}</t:Folders></m:RootFolder>`);
  });
}

export const WRITE_OPERATIONS = { UpdateItem: updateItem, MoveItem: moveItems, DeleteItem: deleteItems,
  CreateFolder: createFolder, FindFolder: findFolder };
