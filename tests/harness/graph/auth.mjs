// File: tests/harness/graph/auth.mjs — bearer-token checks of the Graph stand-in, as Graph
// makes them: an RS256 JWT signed by a key of the Entra stand-in's JWKS
// (/discovery/v2.0/keys, fetched over HTTPS with its CA and again on an unknown kid), with
// `aud` Microsoft Graph (any cloud's URI or its app id), inside nbf/exp, and the application
// permissions (`roles`) or delegated scopes (`scp`) the request needs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import { GraphError } from './mailstore.mjs';

export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
const AUDIENCES = new Set(['https://graph.microsoft.com', 'https://graph.microsoft.com/',
  'https://graph.microsoft.us', 'https://dod-graph.microsoft.us',
  'https://microsoftgraph.chinacloudapi.cn', GRAPH_APP_ID]);

// Graph's challenge on 401 (the authorization_uri of the public cloud, Graph's client id).
const WWW_AUTHENTICATE = 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", ' +
  `client_id="${GRAPH_APP_ID}"`;

const invalidToken = (message) => new GraphError(401, 'InvalidAuthenticationToken', message,
  { 'WWW-Authenticate': WWW_AUTHENTICATE });
export const accessDenied = () => new GraphError(403, 'ErrorAccessDenied',
  'Access is denied. Check credentials and try again.');

export class TokenChecker {
  // `audiences`: the accepted `aud` values (default Graph's; the EWS stand-in passes
  // Exchange's).
  constructor({ jwksUrl, caFile, settings, audiences }) {
    this.jwksUrl = jwksUrl;
    this.audiences = audiences ? new Set(audiences) : AUDIENCES;
    this.ca = caFile ? fs.readFileSync(caFile) : undefined;
    this.settings = settings;
    this.keys = new Map();
    this.lastFetch = 0;
    this.seen = new Set();     // digests of the tokens accepted so far
    this.revoked = new Set();  // … and of those revoked (admin POST /tokens/revoke)
  }

  // Every token accepted until now, and any issued before this second, gets 401 from now on.
  revokeAll() {
    for (const t of this.seen) this.revoked.add(t);
    this.seen.clear();
    this.settings.revoked_before = Math.floor(Date.now() / 1000);
  }

  fetchKeys() {
    return new Promise((resolve, reject) => {
      if (!this.jwksUrl) return reject(new Error('no JWKS URL configured'));
      const req = https.get(this.jwksUrl, { ca: this.ca, timeout: 5000 }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            for (const k of body.keys ?? []) {
              this.keys.set(k.kid, crypto.createPublicKey({ key: k, format: 'jwk' }));
            }
            this.lastFetch = Date.now();
            resolve();
          } catch (err) {
            reject(err);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('JWKS fetch timed out')));
      req.on('error', reject);
    });
  }

  async keyFor(kid) {
    if (!this.keys.has(kid) && Date.now() - this.lastFetch > 1000) await this.fetchKeys();
    return this.keys.get(kid);
  }

  // The verified claims of the request's bearer token, or a GraphError (401).
  async check(authorization) {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!authorization) throw invalidToken('Access token is empty.');
    if (!m) throw invalidToken('Access token is empty.');
    const parts = m[1].split('.');
    if (parts.length !== 3) {
      throw invalidToken('IDX14100: JWT is not well formed, there are no dots (.).');
    }
    let header;
    let claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      throw invalidToken('IDX14102: Unable to decode the header or payload as Base64Url encoded.');
    }
    if (header.alg !== 'RS256') throw invalidToken('Access token validation failure. Invalid signature algorithm.');
    const key = await this.keyFor(header.kid);
    const ok = key && crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key,
      Buffer.from(parts[2], 'base64url'));
    if (!ok) throw invalidToken('Access token validation failure.');
    if (!this.audiences.has(claims.aud)) throw invalidToken('Access token validation failure. Invalid audience.');
    const now = Math.floor(Date.now() / 1000);
    const skew = this.settings.clock_skew;
    if (typeof claims.exp !== 'number' || claims.exp + skew <= now ||
        (typeof claims.nbf === 'number' && claims.nbf - skew > now)) {
      throw invalidToken('Lifetime validation failed, the token is expired.');
    }
    const digest = crypto.createHash('sha256').update(m[1]).digest('base64url');
    if (this.revoked.has(digest) ||
        (this.settings.revoked_before && (claims.iat ?? 0) < this.settings.revoked_before)) {
      throw invalidToken('Lifetime validation failed, the token is expired.');
    }
    this.seen.add(digest);
    return claims;
  }
}

// The permissions a token holds: application roles, or delegated scopes.
export function permissions(claims) {
  const set = new Set(claims.roles ?? []);
  for (const s of String(claims.scp ?? '').split(' ')) if (s) set.add(s);
  return set;
}

// Reading mail needs Mail.Read (or Mail.ReadWrite); changing it Mail.ReadWrite; sending
// Mail.Send. Graph answers a token without them 403 ErrorAccessDenied.
export function requirePermission(claims, need) {
  const have = permissions(claims);
  const ok = {
    read: ['Mail.ReadWrite', 'Mail.Read', 'Mail.ReadBasic.All', 'Mail.ReadBasic'],
    write: ['Mail.ReadWrite'],
    send: ['Mail.Send'],
    user: ['User.Read.All', 'User.ReadBasic.All', 'Directory.Read.All', 'User.Read'],
  }[need].some((p) => have.has(p));
  if (ok) return;
  if (need === 'user') {
    throw new GraphError(403, 'Authorization_RequestDenied',
      'Insufficient privileges to complete the operation.');
  }
  throw accessDenied();
}
