// File: tests/harness/ews/soap.mjs — how Exchange words its EWS answers: the envelope with
// ServerVersionInfo, response messages (ResponseClass, MessageText, ResponseCode,
// DescriptiveLinkKey, MessageXml) as the examples of learn.microsoft.com's EWS reference show
// them (tests/data/ews/doc-examples/), and SOAP faults (HTTP 500) with the detail Exchange
// sends: ResponseCode, Message and, for ErrorServerBusy, MessageXml's BackOffMilliseconds.
import { escapeXml } from './xml.mjs';

export const NS = {
  soap: 'http://schemas.xmlsoap.org/soap/envelope/',
  types: 'http://schemas.microsoft.com/exchange/services/2006/types',
  messages: 'http://schemas.microsoft.com/exchange/services/2006/messages',
  errors: 'http://schemas.microsoft.com/exchange/services/2006/errors',
};

// RequestServerVersion values this server accepts (Exchange Server 2019 CU / SE knows these).
export const VERSIONS = new Set(['Exchange2007', 'Exchange2007_SP1', 'Exchange2010', 'Exchange2010_SP1',
  'Exchange2010_SP2', 'Exchange2013', 'Exchange2013_SP1', 'Exchange2015', 'Exchange2016', 'V2015_10_05',
  'V2016_01_06', 'V2016_04_13', 'V2016_07_13', 'V2016_10_10', 'V2017_01_07', 'V2017_04_14', 'V2017_07_11']);

// The texts Exchange gives with each code.
export const MESSAGES = {
  ErrorServerBusy: 'The server cannot service this request right now. Try again later.',
  ErrorImpersonateUserDenied: 'The account does not have permission to impersonate the requested user.',
  ErrorNonExistentMailbox: 'The SMTP address has no mailbox associated with it.',
  ErrorInvalidExchangeImpersonationHeaderData: 'ExchangeImpersonation SOAP header must be present for this type of OAuth token.',
  ErrorAccessDenied: 'Access is denied. Check credentials and try again.',
  ErrorInvalidSyncStateData: 'Synchronization state data is corrupt or otherwise invalid.',
  ErrorInvalidIdMalformed: 'Id is malformed.',
  ErrorItemNotFound: 'The specified object was not found in the store.',
  ErrorFolderNotFound: 'The specified folder could not be found in the store.',
  ErrorSchemaValidation: 'The request failed schema validation.',
  ErrorInvalidServerVersion: 'The specified server version is invalid.',
  ErrorInvalidRequest: 'The request is invalid.',
  ErrorInternalServerError: 'An internal server error occurred. The operation failed.',
};

const SERVER_VERSION = '<h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" ' +
  `MinorBuildNumber="4" Version="V2017_07_11" xmlns:h="${NS.types}" xmlns="${NS.types}" ` +
  'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>';

export function envelope(body) {
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${NS.soap}"><s:Header>${SERVER_VERSION}</s:Header>` +
    '<s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">' +
    `${body}</s:Body></s:Envelope>`;
}

// <m:{op}Response> around response messages (strings from success()/error()).
export function operationResponse(op, messages) {
  return envelope(`<m:${op}Response xmlns:m="${NS.messages}" xmlns:t="${NS.types}"><m:ResponseMessages>` +
    `${messages.join('')}</m:ResponseMessages></m:${op}Response>`);
}

export function success(op, inner = '') {
  return `<m:${op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>${inner}</m:${op}ResponseMessage>`;
}

// An error response message; `values` become MessageXml's <t:Value Name=…> entries.
export function error(op, code, { text, values, after = '' } = {}) {
  const xml = values ? `<m:MessageXml>${Object.entries(values).map(([k, v]) =>
    `<t:Value Name="${escapeXml(k)}">${escapeXml(v)}</t:Value>`).join('')}</m:MessageXml>` : '';
  return `<m:${op}ResponseMessage ResponseClass="Error"><m:MessageText>${escapeXml(text ?? MESSAGES[code] ?? code)}</m:MessageText>` +
    `<m:ResponseCode>${code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>${xml}${after}</m:${op}ResponseMessage>`;
}

// A SOAP fault as Exchange sends it (HTTP 500).
export function fault(code, { text, backOffMs } = {}) {
  const message = escapeXml(text ?? MESSAGES[code] ?? code);
  const xml = backOffMs !== undefined && backOffMs !== null
    ? `<t:MessageXml xmlns:t="${NS.types}"><t:Value Name="BackOffMilliseconds">${Number(backOffMs)}</t:Value></t:MessageXml>` : '';
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${NS.soap}"><s:Body><s:Fault>` +
    `<faultcode xmlns:a="${NS.types}">a:${code}</faultcode><faultstring xml:lang="en-US">${message}</faultstring>` +
    `<detail><e:ResponseCode xmlns:e="${NS.errors}">${code}</e:ResponseCode><e:Message xmlns:e="${NS.errors}">${message}</e:Message>` +
    `${xml}</detail></s:Fault></s:Body></s:Envelope>`;
}

export class EwsFault extends Error {
  constructor(code, { status = 500, text, backOffMs } = {}) {
    super(text ?? MESSAGES[code] ?? code);
    this.code = code;
    this.status = status;
    this.backOffMs = backOffMs;
  }
}
