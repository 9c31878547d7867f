// File: tests/harness/graph/mime.mjs — just enough RFC 5322/2047 for the Graph stand-in: the
// header fields a message resource shows (subject, from, recipients, Message-ID, dates,
// attachments present), and the MIME that Exchange would build from a JSON message (sendMail
// with JSON, drafts) so the test can read what was sent in one shape.
import crypto from 'node:crypto';

// Unfolded header fields of the top-level header: [{name (lower case), value}].
export function parseHeader(raw) {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  const fields = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length) {
      fields[fields.length - 1].value += ` ${line.trim()}`;
    } else {
      const colon = line.indexOf(':');
      if (colon > 0) fields.push({ name: line.slice(0, colon).trim().toLowerCase(),
        value: line.slice(colon + 1).trim() });
    }
  }
  return fields;
}

// RFC 2047 encoded words (B and Q) in UTF-8 or Latin-1; anything else is left as is.
export function decodeWords(value) {
  return value.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=(\s+(?==\?))?/g, (all, cs, enc, data) => {
    const charset = cs.toLowerCase().replace(/\*.*$/, '');
    let bytes;
    if (enc.toLowerCase() === 'b') bytes = Buffer.from(data, 'base64');
    else {
      bytes = Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9a-fA-F]{2})/g,
        (m, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    }
    if (charset === 'utf-8' || charset === 'utf8') return bytes.toString('utf8');
    if (charset === 'iso-8859-1' || charset === 'us-ascii') return bytes.toString('latin1');
    return all;
  });
}

// "Name <a@b>, c@d" → [{emailAddress: {name, address}}] (Graph's recipient shape).
export function parseAddresses(value) {
  if (!value) return [];
  const out = [];
  // Split on commas outside quotes and angle brackets.
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (const ch of decodeWords(value)) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') depth++;
    else if (!quoted && ch === '>') depth--;
    if (ch === ',' && !quoted && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^(.*?)\s*<([^>]*)>$/.exec(s);
    const address = (m ? m[2] : s).trim();
    const name = m ? m[1].replace(/^"|"$/g, '').trim() : '';
    return { emailAddress: { name: name || address, address } };
  });
}

// The message-resource properties a raw MIME message gives.
export function summarize(raw) {
  const fields = parseHeader(raw);
  const get = (n) => fields.find((f) => f.name === n)?.value ?? '';
  const date = Date.parse(get('date'));
  const from = parseAddresses(get('from'))[0] ?? null;
  const text = raw.toString('latin1');
  const contentType = get('content-type').toLowerCase();
  const hasAttachments = /^content-disposition:\s*attachment/im.test(text) ||
    (contentType.startsWith('multipart/mixed') && /\r?\n--[^\r\n]+\r?\ncontent-type:\s*(application|image|audio|video)\//im.test(text));
  return {
    subject: decodeWords(get('subject')),
    from,
    sender: from,
    toRecipients: parseAddresses(get('to')),
    ccRecipients: parseAddresses(get('cc')),
    bccRecipients: parseAddresses(get('bcc')),
    replyTo: parseAddresses(get('reply-to')),
    internetMessageId: get('message-id') || null,
    sentDateTime: Number.isFinite(date) ? new Date(date).toISOString().replace(/\.\d+Z$/, 'Z') : null,
    hasAttachments,
    bodyPreview: bodyPreview(text),
  };
}

function bodyPreview(text) {
  const start = text.search(/\r?\n\r?\n/);
  if (start < 0) return '';
  return text.slice(start).replace(/\s+/g, ' ').trim().slice(0, 255);
}

const fmtAddress = (r) => {
  const a = r?.emailAddress ?? {};
  return a.name && a.name !== a.address ? `"${a.name.replace(/"/g, '')}" <${a.address}>` : `<${a.address}>`;
};
const encodeWord = (s) => (/^[\x20-\x7e]*$/.test(s) ? s
  : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`);

// The MIME Exchange would make of a JSON message: multipart/mixed when it has attachments.
export function composeFromJson(message, fromUser, attachments = []) {
  const lines = [];
  const from = message.from ?? { emailAddress: { name: fromUser.displayName, address: fromUser.upn } };
  lines.push(`From: ${fmtAddress(from)}`);
  for (const [field, key] of [['To', 'toRecipients'], ['Cc', 'ccRecipients'],
    ['Bcc', 'bccRecipients'], ['Reply-To', 'replyTo']]) {
    const list = message[key] ?? [];
    if (list.length) lines.push(`${field}: ${list.map(fmtAddress).join(', ')}`);
  }
  lines.push(`Subject: ${encodeWord(message.subject ?? '')}`);
  lines.push(`Date: ${new Date().toUTCString().replace('GMT', '+0000')}`);
  lines.push(`Message-ID: ${message.internetMessageId ??
    `<${crypto.randomUUID()}@graph-stand-in.contoso.onmicrosoft.com>`}`);
  for (const h of message.internetMessageHeaders ?? []) lines.push(`${h.name}: ${h.value}`);
  lines.push('MIME-Version: 1.0');
  const body = message.body ?? { contentType: 'text', content: '' };
  const bodyType = String(body.contentType).toLowerCase() === 'html' ? 'text/html' : 'text/plain';
  const bodyPart = [`Content-Type: ${bodyType}; charset="utf-8"`,
    'Content-Transfer-Encoding: base64', '',
    wrap(Buffer.from(body.content ?? '', 'utf8').toString('base64'))].join('\r\n');
  if (!attachments.length) return Buffer.from(`${lines.join('\r\n')}\r\n${bodyPart}\r\n`, 'utf8');
  const boundary = `_mb_${crypto.randomBytes(12).toString('hex')}_`;
  lines.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
  const parts = [bodyPart, ...attachments.map((a) => [
    `Content-Type: ${a.contentType || 'application/octet-stream'}; name="${a.name}"`,
    `Content-Disposition: attachment; filename="${a.name}"; size=${a.bytes.length}`,
    'Content-Transfer-Encoding: base64', '', wrap(a.bytes.toString('base64'))].join('\r\n'))];
  const text = `${lines.join('\r\n')}\r\n\r\n${parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('')}--${boundary}--\r\n`;
  return Buffer.from(text, 'utf8');
}

const wrap = (b64) => b64.replace(/.{1,76}/g, '$&\r\n').replace(/\r\n$/, '');
