// File: tests/harness/ews/send.mjs — the EWS stand-in's CreateItem for mail (the "CreateItem
// operation (email message)" reference): MessageDisposition SendAndSaveCopy (the message goes
// out and a copy lands in SavedItemFolderId, Sent Items by default), SendOnly and SaveOnly
// (a draft), with the message as t:MimeContent (base64) or as the documented properties
// (Subject, Body, ToRecipients …). What is sent is recorded with its MIME for the tests
// (admin GET /sent); From must be the acting mailbox (else ErrorSendAsDenied), and a message
// without recipients is ErrorInvalidRecipients, as Exchange answers.
import { error, EwsFault, operationResponse, success } from './soap.mjs';
import { ResponseError, resolveFolder } from './ops.mjs';
import { child, children, find, textOf } from './xml.mjs';

export const sent = [];  // {mailbox, disposition, recipients, mime (Buffer), saved_item_id, at}

const DISPOSITIONS = ['SaveOnly', 'SendOnly', 'SendAndSaveCopy'];

// Addresses of the header fields `names` in a MIME header section (folded lines joined).
function headerAddresses(mime, names) {
  const head = mime.toString('latin1').split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  const out = [];
  for (const line of head.split(/\r?\n/)) {
    const m = /^([^:]+):(.*)$/.exec(line);
    if (!m || !names.includes(m[1].trim().toLowerCase())) continue;
    out.push(...(m[2].match(/[^\s<>,;"]+@[^\s<>,;"]+/g) ?? []).map((a) => a.toLowerCase()));
  }
  return out;
}

// Bcc is removed from what is delivered, as Exchange's transport does.
const withoutBcc = (mime) => Buffer.from(mime.toString('latin1')
  .replace(/^Bcc:[^\r\n]*(\r?\n[ \t][^\r\n]*)*\r?\n/im, ''), 'latin1');

// The documented example's form: properties instead of MIME, made into a small MIME message.
function mimeOfProperties(msg, from) {
  const to = children(child(msg, 'ToRecipients'), 'Mailbox').map((m) => textOf(child(m, 'EmailAddress')));
  const subject = textOf(child(msg, 'Subject')) ?? '';
  const body = textOf(child(msg, 'Body')) ?? '';
  return Buffer.from(`From: ${from}\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`, 'utf8');
}

function createItem(ctx, req) {
  const disposition = req.attrs.MessageDisposition ?? 'SaveOnly';
  if (!DISPOSITIONS.includes(disposition)) {
    throw new EwsFault('ErrorSchemaValidation', { text: `The request failed schema validation: MessageDisposition '${disposition}' is not valid.` });
  }
  const messages = child(req, 'Items')?.children.filter((c) => c.name === 'Message') ?? [];
  if (!messages.length) throw new EwsFault('ErrorSchemaValidation', { text: 'The request failed schema validation: Items must hold a Message.' });
  const savedEl = child(req, 'SavedItemFolderId')?.children[0];
  return operationResponse('CreateItem', messages.map((msg) => {
    try {
      const mimeEl = child(msg, 'MimeContent');
      const fromProperty = textOf(find(child(msg, 'From'), 'EmailAddress'))?.toLowerCase();
      const mime = mimeEl ? Buffer.from(mimeEl.text.replace(/\s+/g, ''), 'base64') : mimeOfProperties(msg, fromProperty ?? ctx.target);
      const from = headerAddresses(mime, ['from'])[0] ?? ctx.target;
      if (from !== ctx.target && !ctx.canAccess(from)) throw new ResponseError('ErrorSendAsDenied');
      const recipients = headerAddresses(mime, ['to', 'cc', 'bcc']);
      if (disposition !== 'SaveOnly' && !recipients.length) throw new ResponseError('ErrorInvalidRecipients');
      const folderEl = savedEl ?? { name: 'DistinguishedFolderId', attrs: { Id: disposition === 'SaveOnly' ? 'drafts' : 'sentitems' }, children: [] };
      const folder = disposition === 'SendOnly' ? null : resolveFolder(ctx, folderEl);
      const item = folder ? ctx.store.deliver(folder.mailbox, folder.name, mime, { isRead: true }) : null;
      if (disposition !== 'SaveOnly') {
        sent.push({ mailbox: ctx.target, disposition, recipients, mime: withoutBcc(mime), raw: mime,
          saved_item_id: item?.id ?? null, saved_folder: folder?.name ?? null, at: new Date().toISOString() });
      }
      ctx.stats.sent = (ctx.stats.sent ?? 0) + (disposition === 'SaveOnly' ? 0 : 1);
      // SendAndSaveCopy and SendOnly answer without an item id (the documented example).
      const items = disposition === 'SaveOnly' ? `<m:Items><t:Message><t:ItemId Id="${item.id}" ChangeKey="${item.changeKey}"/></t:Message></m:Items>` : '<m:Items/>';
      return success('CreateItem', items);
    } catch (err) {
      if (err instanceof ResponseError) return errorWithItems(err.code, err.text);
      throw err;
    }
  }));
}

const errorWithItems = (code, text) => error('CreateItem', code, { text, after: '<m:Items/>' });

export const SEND_OPERATIONS = { CreateItem: createItem };

// Admin: GET /sent?mailbox=… (all when absent): what was sent, MIME as text and base64.
export const SEND_ADMIN = {
  'GET /sent': (b, q) => {
    const mb = (q.get('mailbox') ?? '').toLowerCase();
    return sent.filter((s) => !mb || s.mailbox === mb).map((s) => ({ ...s, mime: s.mime.toString('utf8'),
      mime_base64: s.mime.toString('base64'), raw: s.raw.toString('utf8') }));
  },
  'POST /sent/clear': () => { sent.length = 0; return { sent: 0 }; },
};
