// File: tests/harness/ews/autodiscover.mjs — the EWS stand-in's Autodiscover: SOAP
// (/autodiscover/autodiscover.svc, GetUserSettings) and POX (/autodiscover/autodiscover.xml,
// the Outlook provider schema 2006a), worded as the reference pages "GetUserSettings operation
// (SOAP)" and "POX Autodiscover response for Exchange" show them, signed in like EWS. One
// server answers for every host name: what each host does is set from the admin port
// (POST /autodiscover), so that tests can map autodiscover.<domain> and <domain> to this
// server (curl CONNECT_TO) and play the documented search:
//
//   {"hosts": {"autodiscover.corp.example": {"soap": "error", "pox": "answer"},
//              "corp.example": {"soap": {"mode": "redirect-url", "url": "https://…"}}},
//    "redirect_addresses": {"old@corp.example": "new@other.example"},
//    "external_url": "https://localhost:PORT/EWS/Exchange.asmx", "internal_url": null}
//
// Modes: answer (the settings), missing (404), error (500), unauthorized (401 whatever the
// credentials), redirect-url (SOAP RedirectUrl / POX redirectUrl to `url`), http-redirect
// (302 Location `url`). A host not listed answers 404 for both.
import { escapeXml } from './xml.mjs';
import { child, children, find, parseXml, textOf } from './xml.mjs';

const AUTODISCOVER_NS = 'http://schemas.microsoft.com/exchange/2010/Autodiscover';
const POX_RESPONSE = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
const POX_OUTLOOK = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';

const fresh = () => ({ hosts: {}, redirect_addresses: {}, external_url: null, internal_url: null, requests: [] });
let config = fresh();

const modeOf = (host, kind) => {
  const h = config.hosts[host];
  const m = h?.[kind] ?? 'missing';
  return typeof m === 'string' ? { mode: m } : m;
};

function settingsOf(address, deps) {
  const ews = `https://localhost:${deps.port()}/EWS/Exchange.asmx`;
  return {
    UserDisplayName: address.split('@')[0], UserDN: `/o=Corp/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=${address.split('@')[0]}`,
    UserDeploymentId: 'a40e2742-21c6-4050-8ed2-d41f100c22b8', CasVersion: '15.02.1544.004',
    EwsSupportedSchemas: 'Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1',
    InternalMailboxServer: `ex01.${deps.domain}`, ActiveDirectoryServer: `dc01.${deps.domain}`,
    MailboxDN: '/o=Corp/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=EX01/cn=Mailbox Database',
    ExternalEwsUrl: config.external_url ?? ews,
    InternalEwsUrl: config.internal_url ?? ews,
  };
}

const soapEnvelope = (body) => '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">' +
  `${AUTODISCOVER_NS}/Autodiscover/GetUserSettingsResponse</a:Action></s:Header><s:Body>` +
  `<GetUserSettingsResponseMessage xmlns="${AUTODISCOVER_NS}"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance">` +
  `<ErrorCode>NoError</ErrorCode><ErrorMessage /><UserResponses>${body}</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`;

const userResponse = (code, message, { target = null, settings = '' } = {}) => `<UserResponse><ErrorCode>${code}</ErrorCode>` +
  `<ErrorMessage>${escapeXml(message)}</ErrorMessage>${target ? `<RedirectTarget>${escapeXml(target)}</RedirectTarget>` : '<RedirectTarget i:nil="true" />'}` +
  `<UserSettingErrors /><UserSettings>${settings}</UserSettings></UserResponse>`;

function soapAnswer(raw, mode, deps) {
  const doc = parseXml(raw);
  const address = textOf(find(doc, 'Mailbox'))?.toLowerCase() ?? '';
  const wanted = children(find(doc, 'RequestedSettings'), 'Setting').map((s) => textOf(s));
  if (mode.mode === 'redirect-url') return soapEnvelope(userResponse('RedirectUrl', 'Redirection URL.', { target: mode.url }));
  const to = config.redirect_addresses[address];
  if (to) return soapEnvelope(userResponse('RedirectAddress', 'Redirection address.', { target: to }));
  if (!deps.exists(address)) return soapEnvelope(userResponse('InvalidUser', `Invalid user: '${address}'`));
  const all = settingsOf(address, deps);
  const settings = wanted.filter((n) => all[n]).map((n) => `<UserSetting i:type="StringSetting"><Name>${n}</Name>` +
    `<Value>${escapeXml(all[n])}</Value></UserSetting>`).join('');
  return soapEnvelope(userResponse('NoError', 'No error.', { settings }));
}

const poxEnvelope = (account) => `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="${POX_RESPONSE}">` +
  `<Response xmlns="${POX_OUTLOOK}">${account}</Response></Autodiscover>`;

function poxAnswer(raw, mode, deps) {
  const doc = parseXml(raw);
  const address = textOf(find(doc, 'EMailAddress'))?.toLowerCase() ?? '';
  const account = (inner) => poxEnvelope(`<Account><AccountType>email</AccountType>${inner}</Account>`);
  if (mode.mode === 'redirect-url') return account(`<Action>redirectUrl</Action><RedirectUrl>${escapeXml(mode.url)}</RedirectUrl>`);
  const to = config.redirect_addresses[address];
  if (to) return account(`<Action>redirectAddr</Action><RedirectAddr>${escapeXml(to)}</RedirectAddr>`);
  const poxError = (code, message) => `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="${POX_RESPONSE}">` +
    `<Response xmlns="${POX_RESPONSE}"><Error Time="${new Date().toISOString().slice(11, 23)}" Id="4130155072">` +
    `<ErrorCode>${code}</ErrorCode><Message>${escapeXml(message)}</Message><DebugData /></Error></Response></Autodiscover>`;
  if (!address) return poxError(600, 'Invalid Request');
  if (!deps.exists(address)) return poxError(500, 'The email address can\'t be found.');
  const s = settingsOf(address, deps);
  const user = `<User><DisplayName>${escapeXml(s.UserDisplayName)}</DisplayName><LegacyDN>${escapeXml(s.UserDN)}</LegacyDN>` +
    `<DeploymentId>${s.UserDeploymentId}</DeploymentId></User>`;
  const protocol = (type, url) => (url ? `<Protocol><Type>${type}</Type><Server>ex01.${deps.domain}</Server>` +
    `<ASUrl>${escapeXml(url)}</ASUrl><EwsUrl>${escapeXml(url)}</EwsUrl><OOFUrl>${escapeXml(url)}</OOFUrl></Protocol>` : '');
  return poxEnvelope(`${user}<Account><AccountType>email</AccountType><Action>settings</Action>` +
    `${protocol('EXCH', s.InternalEwsUrl)}${protocol('EXPR', s.ExternalEwsUrl)}</Account>`);
}

// Handles /autodiscover/*; deps: {authenticate, Unauthorized, challenges, readBody, send,
// port(), domain, exists}. `entry` is the request log's.
export async function onAutodiscover(req, res, entry, deps) {
  const url = new URL(req.url, 'https://localhost');
  const host = String(req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  const path = url.pathname.toLowerCase();
  const kind = path === '/autodiscover/autodiscover.svc' ? 'soap' : path === '/autodiscover/autodiscover.xml' ? 'pox' : null;
  entry.operation = kind ? `autodiscover-${kind}` : 'autodiscover';
  entry.host = host;
  config.requests.push({ host, kind, at: new Date().toISOString() });
  const raw = await deps.readBody(req, 1024 * 1024);
  const mode = kind ? modeOf(host, kind) : { mode: 'missing' };
  if (mode.mode === 'missing') return [404, deps.send(res, 404, '', { 'Content-Type': 'text/html' })];
  if (mode.mode === 'error') return [500, deps.send(res, 500, 'Internal Server Error', { 'Content-Type': 'text/html' })];
  if (mode.mode === 'http-redirect') return [302, deps.send(res, 302, '', { Location: mode.url, 'Content-Type': 'text/html' })];
  try {
    if (mode.mode === 'unauthorized') throw new deps.Unauthorized('autodiscover: unauthorized (mode)');
    await deps.authenticate(req, entry);
  } catch (err) {
    if (!(err instanceof deps.Unauthorized)) throw err;
    entry.why = err.message;
    return [401, deps.send(res, 401, '', { 'WWW-Authenticate': err.headers['WWW-Authenticate'] ?? deps.challenges(), 'Content-Type': 'text/html' })];
  }
  const body = raw.toString('utf8');
  return [200, deps.send(res, 200, kind === 'soap' ? soapAnswer(body, mode, deps) : poxAnswer(body, mode, deps))];
}

export const AUTODISCOVER_ADMIN = {
  'POST /autodiscover': (b) => {
    config = { ...fresh(), ...b, requests: [] };
    return config;
  },
  'GET /autodiscover': () => config,
};
