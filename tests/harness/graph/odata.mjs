// File: tests/harness/graph/odata.mjs — the OData parts of the Graph stand-in: Graph's error
// body, the message and attachment views with $select, $filter expressions the mail API
// accepts, Prefer headers (odata.maxpagesize, IdType="ImmutableId") and page sizes.
import crypto from 'node:crypto';

import { GraphError } from './mailstore.mjs';

export const isoNow = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

// learn.microsoft.com/graph/errors: error.code, error.message, error.innerError with the
// date, request-id and client-request-id of the request.
export function errorBody(code, message, ids, extra = {}) {
  return {
    error: {
      code, message,
      innerError: { date: isoNow(), 'request-id': ids.requestId,
        'client-request-id': ids.clientRequestId, ...extra },
    },
  };
}

// Prefer: odata.maxpagesize=N, IdType="ImmutableId" (comma-separated, several headers).
export function parsePrefer(req) {
  const raw = [req.headers.prefer ?? ''].flat().join(',');
  const out = { maxPageSize: null, immutable: false, bodyType: 'html', applied: [] };
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^odata\.maxpagesize\s*=\s*(\d+)$/i.exec(part);
    if (m) out.maxPageSize = Number(m[1]);
    if (/^IdType\s*=\s*"?ImmutableId"?$/i.test(part)) out.immutable = true;
    const b = /^outlook\.body-content-type\s*=\s*"?(text|html)"?$/i.exec(part);
    if (b) out.bodyType = b[1].toLowerCase();
  }
  return out;
}

const etagOf = (m) => `CQAAABYAAAAR${crypto.createHash('sha1').update(`${m.key}:${m.version}`).digest('base64').slice(0, 16)}`;

// The properties of a message resource in the order Graph lists them.
const MESSAGE_PROPS = ['createdDateTime', 'lastModifiedDateTime', 'changeKey', 'categories',
  'receivedDateTime', 'sentDateTime', 'hasAttachments', 'internetMessageId', 'subject',
  'bodyPreview', 'importance', 'parentFolderId', 'conversationId', 'conversationIndex',
  'isDeliveryReceiptRequested', 'isReadReceiptRequested', 'isRead', 'isDraft', 'webLink',
  'inferenceClassification', 'body', 'sender', 'from', 'toRecipients', 'ccRecipients',
  'bccRecipients', 'replyTo', 'flag'];
const SELECTABLE = new Set([...MESSAGE_PROPS, 'id', 'uniqueBody', 'internetMessageHeaders',
  'attachments', 'singleValueExtendedProperties', 'multiValueExtendedProperties']);

// $select=a,b → ['a','b'] (validated: Graph rejects an unknown property with 400).
export function parseSelect(value) {
  if (!value) return null;
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!SELECTABLE.has(n) && !SELECTABLE.has(n[0].toLowerCase() + n.slice(1))) {
      throw new GraphError(400, 'RequestBroker--ParseUri',
        `Could not find a property named '${n}' on type 'microsoft.graph.message'.`);
    }
  }
  return names.map((n) => (SELECTABLE.has(n) ? n : n[0].toLowerCase() + n.slice(1)));
}

// $expand=singleValueExtendedProperties($filter=id eq '<id>') → the property's canonical id,
// or null without $expand. Graph answers an $expand it cannot do with 400. The stand-in knows
// one MAPI property: PidTagMessageSize ("Long 0x0E08"), the item's size in bytes.
export function parseExpand(value) {
  if (!value) return null;
  const m = /^singleValueExtendedProperties\(\$filter=id eq '([^']+)'\)$/i.exec(value.trim());
  if (!m) {
    throw new GraphError(400, 'BadRequest',
      `Parsing OData Select and Expand failed: the $expand '${value}' is not supported.`);
  }
  const id = /^(\w+)\s+0x([0-9a-f]{1,4})$/i.exec(m[1].trim());
  if (!id) throw new GraphError(400, 'ErrorInvalidProperty', `The extended property id '${m[1]}' is invalid.`);
  return { type: id[1].toLowerCase(), tag: parseInt(id[2], 16) };
}

// The expanded extended properties of one message, as Graph writes them: the id normalised
// ("Long 0xe08"), the value a string. A property the item does not have is left out, and
// with it the whole array (as Graph does).
export function extendedProperties(m, expand) {
  if (!expand) return {};
  if (expand.type === 'long' && expand.tag === 0x0e08) {
    return { singleValueExtendedProperties: [{ id: 'Long 0xe08', value: String(m.mime.length) }] };
  }
  return {};
}

export function messageId(m, immutable) { return immutable ? m.immutableId : m.restId; }

export function messageView(m, { select, immutable, folder, headers, bodyType = 'html' }) {
  const p = m.props;
  const id = messageId(m, immutable);
  const all = {
    createdDateTime: m.createdDateTime,
    lastModifiedDateTime: m.lastModifiedDateTime,
    changeKey: etagOf(m),
    categories: m.categories,
    receivedDateTime: m.receivedDateTime,
    sentDateTime: p.sentDateTime ?? m.receivedDateTime,
    hasAttachments: p.hasAttachments || m.attachments.length > 0,
    internetMessageId: p.internetMessageId,
    subject: p.subject,
    bodyPreview: p.bodyPreview,
    importance: m.importance,
    parentFolderId: folder.id,
    conversationId: m.conversationId,
    conversationIndex: Buffer.from(m.key).toString('base64'),
    isDeliveryReceiptRequested: false,
    isReadReceiptRequested: false,
    isRead: m.isRead,
    isDraft: m.isDraft,
    webLink: `https://outlook.office365.com/owa/?ItemID=${encodeURIComponent(id)}&exvsurl=1&viewmodel=ReadMessageItem`,
    inferenceClassification: 'focused',
    // Graph sends HTML unless Prefer: outlook.body-content-type="text".
    body: bodyType === 'text' ? { contentType: 'text', content: p.bodyPreview }
      : { contentType: 'html', content: `<html><body>${p.bodyPreview.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</body></html>` },
    sender: p.sender,
    from: p.from,
    toRecipients: p.toRecipients,
    ccRecipients: p.ccRecipients,
    bccRecipients: p.bccRecipients,
    replyTo: p.replyTo,
    flag: m.flag,
  };
  const out = { '@odata.etag': `W/"${etagOf(m)}"` };
  if (!select) {
    out.id = id;
    Object.assign(out, all);
    return out;
  }
  for (const n of select) {
    if (n === 'id') continue;
    if (n === 'internetMessageHeaders') out[n] = headers ?? [];
    else if (n in all) out[n] = all[n];
  }
  out.id = id;  // always returned
  return out;
}

export function attachmentView(a) {
  return {
    '@odata.type': '#microsoft.graph.fileAttachment',
    id: a.id, lastModifiedDateTime: a.lastModifiedDateTime, name: a.name,
    contentType: a.contentType, size: a.bytes.length, isInline: Boolean(a.isInline),
    contentId: a.contentId ?? null, contentLocation: null,
  };
}

export const newAttachmentId = () => `AAMkADAttach${crypto.randomBytes(18).toString('base64url')}=`;

// The $filter expressions the stand-in understands, as a predicate on messages:
// isRead eq true|false, receivedDateTime ge|gt|le|lt <date>, internetMessageId eq '<…>',
// hasAttachments eq true|false, joined by "and".
export function messageFilter(expr) {
  if (!expr) return () => true;
  const terms = expr.split(/\s+and\s+/i).map((t) => t.trim());
  const preds = terms.map((t) => {
    let m = /^(isRead|hasAttachments|isDraft)\s+(eq|ne)\s+(true|false)$/i.exec(t);
    if (m) {
      const prop = m[1][0].toLowerCase() + m[1].slice(1);
      const want = m[3].toLowerCase() === 'true';
      const get = (x) => (prop === 'hasAttachments' ? x.props.hasAttachments : x[prop]);
      return m[2].toLowerCase() === 'eq' ? (x) => get(x) === want : (x) => get(x) !== want;
    }
    m = /^receivedDateTime\s+(ge|gt|le|lt|eq)\s+'?([0-9TZ:.+-]+)'?$/i.exec(t);
    if (m) {
      const at = Date.parse(m[2]);
      if (!Number.isFinite(at)) throw badFilter();
      const op = m[1].toLowerCase();
      return (x) => {
        const v = Date.parse(x.receivedDateTime);
        return { ge: v >= at, gt: v > at, le: v <= at, lt: v < at, eq: v === at }[op];
      };
    }
    m = /^internetMessageId\s+eq\s+'(.*)'$/i.exec(t);
    if (m) return (x) => x.props.internetMessageId === m[1].replace(/''/g, "'");
    m = /^subject\s+eq\s+'(.*)'$/i.exec(t);
    if (m) return (x) => x.props.subject === m[1].replace(/''/g, "'");
    throw badFilter();
  });
  return (x) => preds.every((p) => p(x));
}

export function folderFilter(expr) {
  if (!expr) return () => true;
  const m = /^displayName\s+eq\s+'(.*)'$/i.exec(expr.trim());
  if (!m) throw badFilter();
  const name = m[1].replace(/''/g, "'");
  return (f) => f.displayName === name;
}

const badFilter = () => new GraphError(400, 'ErrorInvalidUrlQueryFilter',
  'The query filter contains one or more invalid nodes.');

// A page size from $top and Prefer: odata.maxpagesize (Graph's default page is 10 items).
export function pageSize(query, prefer, { max = 1000, fallback = 10 } = {}) {
  const top = query.get('$top');
  if (top !== null) {
    const n = Number(top);
    if (!Number.isInteger(n) || n < 0) {
      throw new GraphError(400, 'BadRequest', `Invalid value '${top}' for $top query option found.`);
    }
  }
  let size = top !== null ? Number(top) : fallback;
  if (prefer.maxPageSize) size = Math.min(top !== null ? size : prefer.maxPageSize, prefer.maxPageSize);
  return Math.max(1, Math.min(size, max));
}
