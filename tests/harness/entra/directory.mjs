// File: tests/harness/entra/directory.mjs — what the Entra ID stand-in knows: tenants, app
// registrations (with their service principals, credentials, application permissions and
// consent), users, refresh-token grants, device codes and used assertion ids; plus the
// resources (Exchange Online and Microsoft Graph, in every national cloud) whose
// permissions an app can hold.
import crypto from 'node:crypto';

// The resource app ids are Microsoft's well-known ones; every cloud's resource URI maps to
// the same permission set (learn.microsoft.com "National cloud deployments").
export const RESOURCES = {
  exchange: {
    appId: '00000002-0000-0ff1-ce00-000000000000',
    displayName: 'Office 365 Exchange Online',
    uris: ['https://outlook.office365.com', 'https://outlook.office.com',
      'https://outlook.office365.us', 'https://outlook-dod.office365.us',
      'https://partner.outlook.cn'],
    roles: ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp', 'full_access_as_app',
      'Mail.ReadWrite', 'Mail.Send', 'Exchange.ManageAsApp'],
    scopes: ['IMAP.AccessAsUser.All', 'POP.AccessAsUser.All', 'SMTP.Send',
      'EWS.AccessAsUser.All', 'Mail.ReadWrite', 'Mail.Send'],
  },
  graph: {
    appId: '00000003-0000-0000-c000-000000000000',
    displayName: 'Microsoft Graph',
    uris: ['https://graph.microsoft.com', 'https://graph.microsoft.us',
      'https://dod-graph.microsoft.us', 'https://microsoftgraph.chinacloudapi.cn'],
    roles: ['Mail.ReadWrite', 'Mail.Send', 'Mail.Read', 'User.Read.All'],
    scopes: ['Mail.ReadWrite', 'Mail.Send', 'Mail.Read', 'User.Read', 'openid', 'profile',
      'email'],
  },
};

// The resource key ("exchange"/"graph") and canonical URI named by `uri`, or null.
export function findResource(uri) {
  const u = uri.replace(/\/+$/, '').toLowerCase();
  for (const [key, r] of Object.entries(RESOURCES)) {
    if (r.appId === u) return { key, uri: r.uris[0] };
    const hit = r.uris.find((x) => x.toLowerCase() === u);
    if (hit) return { key, uri: hit };
  }
  return null;
}

export const newGuid = () => crypto.randomUUID();

// An Entra-looking client secret: 40 characters with the "~" Entra puts after the prefix.
export function newSecret() {
  const raw = crypto.randomBytes(30).toString('base64url').replace(/[-_]/g, 'x');
  return `${raw.slice(0, 3)}8Q~${raw.slice(3, 40)}`;
}

// SHA-256 and SHA-1 thumbprints (base64url) of a PEM certificate, and its public key.
export function certInfo(pem) {
  const cert = new crypto.X509Certificate(pem);
  return {
    publicKey: cert.publicKey,
    x5tS256: crypto.createHash('sha256').update(cert.raw).digest('base64url'),
    x5t: crypto.createHash('sha1').update(cert.raw).digest('base64url'),
  };
}

export class Directory {
  constructor() {
    this.tenants = new Map();   // id → {id, domain, name}
    this.apps = new Map();      // client_id → app
    this.users = new Map();     // lower upn → {upn, oid, tenant, name}
    this.grants = new Map();    // refresh token → grant record
    this.deviceCodes = new Map();  // device_code → record
    this.usedJtis = new Map();  // jti → exp (ms)
  }

  addTenant({ id = newGuid(), domain, name }) {
    const t = { id, domain: domain.toLowerCase(), name: name ?? domain };
    this.tenants.set(id, t);
    return t;
  }

  // The tenant a path segment names: its id or a verified domain (case-insensitive).
  findTenant(segment) {
    const s = segment.toLowerCase();
    for (const t of this.tenants.values()) {
      if (t.id === s || t.domain === s) return t;
    }
    return null;
  }

  // Registers (or updates) an app. `roles`/`scopes`: {exchange|graph|<resource uri>: [...]}.
  upsertApp(spec) {
    const clientId = spec.client_id || newGuid();
    const old = this.apps.get(clientId);
    const app = old ?? {
      clientId,
      objectId: newGuid(),
      spObjectId: newGuid(),
      displayName: spec.display_name || `mailbridge test app ${clientId.slice(0, 8)}`,
      tenant: null,
      secret: null,
      secretExpired: false,
      cert: null,
      roles: { exchange: [], graph: [] },
      scopes: { exchange: [], graph: [] },
      consent: true,
      isPublic: false,
      disabled: false,
      forced: null,  // {code, remaining} — a scenario the admin switched on
    };
    if (spec.tenant !== undefined) app.tenant = this.findTenant(spec.tenant)?.id ?? spec.tenant;
    if (spec.display_name !== undefined) app.displayName = spec.display_name;
    if (spec.secret !== undefined) app.secret = spec.secret === true ? newSecret() : spec.secret;
    if (spec.secret_expired !== undefined) app.secretExpired = truthy(spec.secret_expired);
    if (spec.certificate !== undefined) {
      app.cert = spec.certificate ? { pem: spec.certificate, ...certInfo(spec.certificate) } : null;
    }
    if (spec.roles !== undefined) app.roles = permissionMap(spec.roles);
    if (spec.scopes !== undefined) app.scopes = permissionMap(spec.scopes);
    if (spec.consent !== undefined) app.consent = truthy(spec.consent);
    if (spec.public !== undefined) app.isPublic = truthy(spec.public);
    if (spec.disabled !== undefined) app.disabled = truthy(spec.disabled);
    if (spec.force_error !== undefined) {
      const code = Number(spec.force_error);
      const count = Number(spec.force_count ?? 0);
      app.forced = code ? { code, remaining: count > 0 ? count : Infinity } : null;
    }
    this.apps.set(clientId, app);
    return app;
  }

  addUser({ upn, tenant, name }) {
    const t = this.findTenant(tenant) ?? [...this.tenants.values()][0];
    const u = { upn, oid: newGuid(), tenant: t.id, name: name ?? upn.split('@')[0] };
    this.users.set(upn.toLowerCase(), u);
    return u;
  }

  findUser(upn) { return this.users.get(String(upn).toLowerCase()) ?? null; }

  // A new refresh token for (app, user, resource, scopes); the grant id ties rotations of
  // one sign-in together so that a revocation ends all of them.
  issueRefreshToken({ app, user, resource, scopes, grantId = newGuid(), issuedAt }) {
    const token = `0.A${crypto.randomBytes(48).toString('base64url')}`;
    const now = Date.now();
    this.grants.set(token, {
      clientId: app.clientId, upn: user.upn, resource, scopes, grantId,
      issuedAt: issuedAt ?? now, lastUsed: now, revoked: false, expired: false,
    });
    return token;
  }

  // Marks every grant matching the filter; returns how many.
  markGrants({ client_id, user, refresh_token, grant_id }, field) {
    let n = 0;
    for (const [token, g] of this.grants) {
      if (refresh_token && token !== refresh_token) continue;
      if (client_id && g.clientId !== client_id) continue;
      if (user && g.upn.toLowerCase() !== String(user).toLowerCase()) continue;
      if (grant_id && g.grantId !== grant_id) continue;
      g[field] = true;
      n++;
    }
    return n;
  }

  // Forgets assertion ids whose assertion has expired anyway.
  pruneJtis(nowMs) {
    for (const [jti, exp] of this.usedJtis) if (exp < nowMs) this.usedJtis.delete(jti);
  }
}

function truthy(v) {
  return v === true || v === 'true' || v === '1' || v === 1 || v === 'yes';
}

// {exchange: [...], "https://graph.microsoft.com": [...]} → {exchange: [...], graph: [...]}.
function permissionMap(spec) {
  const out = { exchange: [], graph: [] };
  const obj = typeof spec === 'string' ? JSON.parse(spec) : spec;
  for (const [k, v] of Object.entries(obj ?? {})) {
    const key = out[k] !== undefined ? k : findResource(k)?.key;
    if (!key) throw new Error(`unknown resource ${k}`);
    out[key] = Array.isArray(v) ? v.map(String) : String(v).split(/[ ,]+/).filter(Boolean);
  }
  return out;
}
