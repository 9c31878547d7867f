// File: tests/harness/entra/sts.mjs — the Entra ID stand-in's security token service: the
// v2.0 token endpoint (client credentials with a secret or a certificate assertion, refresh
// tokens, device code) and the device authorization endpoint, with Entra's checks in Entra's
// order (tenant, app, client authentication, grant, scope, consent, policy) and Entra's
// error bodies (aadsts.mjs).
import crypto from 'node:crypto';

import { aadstsError } from './aadsts.mjs';
import { RESOURCES, findResource, newGuid } from './directory.mjs';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// A thrown AADSTS error: the request handler turns it into the response.
export class StsError extends Error {
  constructor(code, vars = {}, overrides = {}) {
    super(`AADSTS${code}`);
    this.code = code;
    this.vars = vars;
    this.overrides = overrides;
  }
}

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

export class Sts {
  // settings: lifetimes (seconds) and limits, changeable through the admin port.
  constructor(directory, signingKey, settings, stats) {
    this.dir = directory;
    this.key = signingKey;  // {privateKey, publicKey, kid}
    this.settings = settings;
    this.stats = stats;
  }

  // ---- tokens this service signs ----

  signJwt(claims) {
    const header = { typ: 'JWT', alg: 'RS256', x5t: this.key.kid, kid: this.key.kid };
    const input = `${b64url(header)}.${b64url(claims)}`;
    const sig = crypto.sign('sha256', Buffer.from(input), this.key.privateKey);
    return `${input}.${sig.toString('base64url')}`;
  }

  // A v1.0 access token as Exchange Online and Graph receive it.
  accessToken({ app, tenant, resource, roles, scp, user, authMethod }) {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      aud: resource.uri,
      iss: `https://sts.windows.net/${tenant.id}/`,
      iat: now, nbf: now, exp: now + this.settings.access_token_ttl,
      aio: crypto.randomBytes(16).toString('base64url'),
      app_displayname: app.displayName,
      appid: app.clientId,
      appidacr: authMethod,  // 0 public, 1 secret, 2 certificate
      idp: `https://sts.windows.net/${tenant.id}/`,
      oid: user ? user.oid : app.spObjectId,
      rh: '0.A' + crypto.randomBytes(12).toString('base64url'),
      sub: user ? user.oid : app.spObjectId,
      tid: tenant.id,
      uti: crypto.randomBytes(16).toString('base64url'),
      ver: '1.0',
    };
    if (user) {
      Object.assign(claims, { scp: scp.join(' '), upn: user.upn, unique_name: user.upn,
        preferred_username: user.upn, name: user.name, idtyp: 'user' });
    } else {
      claims.idtyp = 'app';
      if (roles.length) claims.roles = roles;
    }
    return this.signJwt(claims);
  }

  // ---- the endpoints ----

  // POST /{tenant}/oauth2/v2.0/token; `endpoint` is the URL the client addressed.
  token(tenantSegment, form, basic, endpoint) {
    const grantType = form.grant_type ?? '';
    const tenant = this.tenantFor(tenantSegment);
    if (!grantType) throw new StsError(900144, { detail: 'grant_type' });
    const clientId = form.client_id ?? basic?.id;
    if (!clientId) throw new StsError(900144, { detail: 'client_id' });
    const app = this.appFor(tenant, clientId);
    if (grantType === 'client_credentials') return this.clientCredentials(tenant, app, form, basic, endpoint);
    if (grantType === 'refresh_token') return this.refresh(tenant, app, form, basic, endpoint);
    if (grantType === DEVICE_GRANT) return this.deviceToken(tenant, app, form, basic, endpoint);
    throw new StsError(70003, {}, { error: 'unsupported_grant_type' });
  }

  // POST /{tenant}/oauth2/v2.0/devicecode
  deviceCode(tenantSegment, form, issuer) {
    const tenant = this.tenantFor(tenantSegment);
    const app = this.appFor(tenant, form.client_id ?? '');
    if (!form.scope) throw new StsError(900144, { detail: 'scope' });
    this.delegatedScopes(app, form.scope);  // rejects an invalid scope now, as Entra does
    const userCode = crypto.randomBytes(6).toString('hex').toUpperCase().slice(0, 9);
    const deviceCode = `DAQABAAEAAA${crypto.randomBytes(48).toString('base64url')}`;
    const expiresIn = this.settings.device_code_ttl;
    this.dir.deviceCodes.set(deviceCode, {
      userCode, clientId: app.clientId, tenant: tenant.id, scope: form.scope,
      expiresAt: Date.now() + expiresIn * 1000, interval: this.settings.device_interval,
      lastPoll: 0, state: 'pending', upn: null, denyError: null,
    });
    const uri = this.settings.verification_uri || 'https://microsoft.com/devicelogin';
    return {
      user_code: userCode, device_code: deviceCode, verification_uri: uri,
      expires_in: expiresIn, interval: this.settings.device_interval,
      message: `To sign in, use a web browser to open the page ${uri} and enter the code ` +
        `${userCode} to authenticate.`,
    };
  }

  // ---- checks shared by every grant ----

  tenantFor(segment) {
    const t = this.dir.findTenant(segment);
    if (t) return t;
    if (['common', 'organizations', 'consumers'].includes(segment.toLowerCase())) {
      return { id: null, domain: segment, multi: true };
    }
    throw new StsError(90002, { tenant: segment });
  }

  appFor(tenant, clientId) {
    const app = this.dir.apps.get(clientId);
    const tenantName = tenant.domain;
    if (!app) throw new StsError(700016, { app: clientId, tenant: tenantName });
    if (tenant.multi) {
      // /organizations and /common resolve to the app's home tenant for these flows.
      Object.assign(tenant, this.dir.tenants.get(app.tenant), { multi: false });
    } else if (app.tenant !== tenant.id) {
      throw new StsError(700016, { app: clientId, tenant: tenantName });
    }
    if (app.disabled) throw new StsError(7000112, { app: clientId });
    if (app.forced) {
      const { code } = app.forced;
      if (--app.forced.remaining <= 0) app.forced = null;
      throw new StsError(code, { app: clientId, tenant: tenantName, detail: 'forced by admin' });
    }
    return app;
  }

  // Client authentication; returns appidacr ("0" none, "1" secret, "2" certificate).
  authenticate(app, form, basic, endpoint, { required }) {
    const secret = form.client_secret ?? basic?.secret;
    const hasAssertion = form.client_assertion !== undefined;
    if (app.isPublic) {
      if (secret !== undefined || hasAssertion) throw new StsError(700025);
      if (required) throw new StsError(7000218);
      return '0';
    }
    if (hasAssertion) {
      if (form.client_assertion_type !== JWT_BEARER) {
        throw new StsError(900144, { detail: 'client_assertion_type' });
      }
      this.verifyAssertion(app, form.client_assertion, endpoint);
      return '2';
    }
    if (secret === undefined) throw new StsError(7000218);
    const ok = app.secret !== null && secret.length === app.secret.length &&
      crypto.timingSafeEqual(Buffer.from(secret), Buffer.from(app.secret));
    if (!ok) throw new StsError(7000215, { app: app.clientId });
    if (app.secretExpired) throw new StsError(7000222, { app: app.clientId });
    return '1';
  }

  // RFC 7523 client assertion as Entra's "certificate credentials" page describes it.
  verifyAssertion(app, assertion, endpoint) {
    const parts = String(assertion).split('.');
    if (parts.length !== 3) throw new StsError(50027);
    let header;
    let claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      throw new StsError(50027);
    }
    const thumb = header['x5t#S256'] ?? header.x5t ?? '';
    const vars = { app: app.clientId, thumbprint: thumb };
    if (!app.cert) throw new StsError(700027, { ...vars, detail: 'The key was not found.' });
    const matches = header['x5t#S256'] ? header['x5t#S256'] === app.cert.x5tS256
      : header.x5t === app.cert.x5t;
    if (!matches) throw new StsError(700027, { ...vars, detail: 'The key was not found.' });
    if (header.alg !== 'PS256' && header.alg !== 'RS256') {
      throw new StsError(700027, { ...vars, detail: `The algorithm ${header.alg} is not supported.` });
    }
    const pss = header.alg === 'PS256';
    const valid = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), {
      key: app.cert.publicKey,
      padding: pss ? crypto.constants.RSA_PKCS1_PSS_PADDING : crypto.constants.RSA_PKCS1_PADDING,
      saltLength: pss ? crypto.constants.RSA_PSS_SALTLEN_DIGEST : undefined,
    }, Buffer.from(parts[2], 'base64url'));
    if (!valid) throw new StsError(700027, { ...vars, detail: 'The signature is not valid.' });
    if (claims.iss !== app.clientId || claims.sub !== app.clientId) throw new StsError(700021);
    const audOk = [endpoint, endpoint.replace(/\/[^/]+\/oauth2\//, `/${app.tenant}/oauth2/`)]
      .includes(claims.aud);
    if (!audOk) throw new StsError(700023);
    const now = Math.floor(Date.now() / 1000);
    const skew = this.settings.clock_skew;
    const from = claims.nbf ?? claims.iat ?? now;
    if (typeof claims.exp !== 'number' || claims.exp + skew < now || from - skew > now) {
      throw new StsError(700024, { detail: new Date(from * 1000).toISOString() });
    }
    if (claims.exp - from > this.settings.assertion_max_lifetime) {
      throw new StsError(700024, { detail: `${new Date(from * 1000).toISOString()} ` +
        `(lifetime ${claims.exp - from} s is longer than allowed)` });
    }
    if (!claims.jti) throw new StsError(50012, { detail: 'The client assertion has no jti claim.' });
    this.dir.pruneJtis(Date.now());
    if (this.dir.usedJtis.has(claims.jti)) {
      throw new StsError(50012, { detail: 'The jti claim of the client assertion was used before.' });
    }
    this.dir.usedJtis.set(claims.jti, (claims.exp + skew) * 1000);
  }

  // ---- scopes ----

  // "https://outlook.office365.com/.default" → {resource, roles}: the only shape client
  // credentials accept.
  appScope(scope) {
    const parts = String(scope ?? '').trim().split(/\s+/).filter(Boolean);
    if (parts.length !== 1 || !parts[0].endsWith('/.default')) {
      throw new StsError(1002012, { scope: scope ?? '' });
    }
    const uri = parts[0].slice(0, -'/.default'.length);
    const resource = findResource(uri);
    if (!resource) throw new StsError(500011, { resource: uri });
    return resource;
  }

  // Delegated scopes → {resource, scp, offline}. One resource per request, as in Entra;
  // a bare scope name ("Mail.Read") belongs to Graph.
  delegatedScopes(app, scope) {
    const parts = String(scope ?? '').trim().split(/\s+/).filter(Boolean);
    let resource = null;
    const scp = [];
    let offline = false;
    for (const p of parts) {
      if (['offline_access', 'openid', 'profile', 'email'].includes(p)) {
        offline ||= p === 'offline_access';
        continue;
      }
      const slash = p.lastIndexOf('/');
      const uri = slash > 0 ? p.slice(0, slash) : RESOURCES.graph.uris[0];
      const name = slash > 0 ? p.slice(slash + 1) : p;
      const r = findResource(uri);
      if (!r) throw new StsError(500011, { resource: uri });
      if (resource && resource.key !== r.key) throw new StsError(70011, { scope });
      resource = r;
      if (name === '.default') scp.push(...app.scopes[r.key]);
      else if (!RESOURCES[r.key].scopes.includes(name)) throw new StsError(70011, { scope: p });
      else scp.push(name);
    }
    if (!resource) resource = { key: 'graph', uri: RESOURCES.graph.uris[0] };
    return { resource, scp: [...new Set(scp)], offline };
  }

  // ---- grants ----

  clientCredentials(tenant, app, form, basic, endpoint) {
    const acr = this.authenticate(app, form, basic, endpoint, { required: true });
    const resource = this.appScope(form.scope);
    if (!app.consent) throw new StsError(65001, { app: app.clientId });
    const roles = app.roles[resource.key] ?? [];
    const expires = this.settings.access_token_ttl;
    return {
      token_type: 'Bearer', expires_in: expires, ext_expires_in: expires,
      access_token: this.accessToken({ app, tenant, resource, roles, authMethod: acr }),
    };
  }

  // Tokens for a user: access token plus, with offline_access, a new refresh token.
  userTokens({ tenant, app, user, requested, acr, grantId, issuedAt }) {
    const { resource, offline } = requested;
    const granted = requested.scp.filter((s) => app.scopes[resource.key].includes(s));
    if (!app.consent || granted.length < requested.scp.length) {
      throw new StsError(65001, { app: app.clientId });
    }
    const expires = this.settings.access_token_ttl;
    const body = {
      token_type: 'Bearer',
      scope: [...granted.map((s) => `${resource.uri}/${s}`), ...(offline ? ['offline_access'] : [])]
        .join(' '),
      expires_in: expires, ext_expires_in: expires,
      access_token: this.accessToken({ app, tenant, resource, scp: granted, user, authMethod: acr }),
    };
    if (offline) {
      body.refresh_token = this.dir.issueRefreshToken({ app, user, resource: resource.key,
        scopes: granted, grantId, issuedAt });
    }
    return body;
  }

  refresh(tenant, app, form, basic, endpoint) {
    const acr = this.authenticate(app, form, basic, endpoint, { required: false });
    if (!form.refresh_token) throw new StsError(900144, { detail: 'refresh_token' });
    const grant = this.dir.grants.get(form.refresh_token);
    if (!grant || grant.clientId !== app.clientId) throw new StsError(9002313, {}, { error: 'invalid_grant' });
    const user = this.dir.findUser(grant.upn);
    const issued = new Date(grant.issuedAt).toISOString();
    if (grant.revoked || !user) throw new StsError(50173, { detail: issued });
    const idle = (Date.now() - grant.lastUsed) / 1000;
    if (grant.expired || idle > this.settings.refresh_token_ttl) {
      throw new StsError(700082, { detail: issued, inactive: `${Math.round(idle)} seconds` });
    }
    grant.lastUsed = Date.now();
    const requested = form.scope ? this.delegatedScopes(app, form.scope)
      : { resource: { key: grant.resource, uri: RESOURCES[grant.resource].uris[0] },
        scp: grant.scopes, offline: true };
    // Entra keeps the old refresh token valid after rotation; the new one continues the grant.
    return this.userTokens({ tenant, app, user, requested, acr, grantId: grant.grantId,
      issuedAt: grant.issuedAt });
  }

  deviceToken(tenant, app, form, basic, endpoint) {
    const acr = this.authenticate(app, form, basic, endpoint, { required: false });
    const code = form.device_code ?? form.code;
    if (!code) throw new StsError(900144, { detail: 'device_code' });
    const rec = this.dir.deviceCodes.get(code);
    if (!rec || rec.clientId !== app.clientId) throw new StsError(70000, {}, { error: 'bad_verification_code' });
    const now = Date.now();
    if (now > rec.expiresAt) throw new StsError(70019);
    const tooSoon = rec.lastPoll && now - rec.lastPoll < rec.interval * 800;
    rec.lastPoll = now;
    if (rec.state === 'pending') {
      if (tooSoon) {
        rec.interval += 5;
        this.stats.slow_down++;
        throw new StsError(70016, {}, { error: 'slow_down' });
      }
      throw new StsError(70016);
    }
    if (rec.state === 'denied') {
      throw new StsError(65004, {}, rec.denyError ? { error: rec.denyError } : {});
    }
    if (rec.state === 'used') throw new StsError(70000, {}, { error: 'invalid_grant' });
    rec.state = 'used';
    const user = this.dir.findUser(rec.upn);
    if (!user) throw new StsError(50034, { detail: rec.upn, tenant: tenant.domain });
    const requested = this.delegatedScopes(app, rec.scope);
    return this.userTokens({ tenant, app, user, requested, acr, grantId: newGuid() });
  }
}
