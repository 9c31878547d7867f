// File: tests/harness/ews/ntlm.mjs — NTLM as an IIS server running Exchange checks it
// ([MS-NLMP]): the NEGOTIATE message read, a CHALLENGE built (server challenge, target
// information AV pairs, so clients answer NTLMv2), and the AUTHENTICATE message's NTLMv2
// response checked against the account's password:
//
//   ResponseKeyNT = HMAC_MD5(MD4(UTF-16LE(Passwd)), UTF-16LE(Uppercase(User) + UserDom))
//   NTProofStr    = HMAC_MD5(ResponseKeyNT, ServerChallenge + temp)     (§3.3.2)
//
// NTLMv1 and LM responses are refused (LmCompatibilityLevel 5, as hardened Windows servers
// are set). Node's OpenSSL 3 has no MD4 (legacy provider), so MD4 (RFC 1320) is here.
// selfTest() checks all of it against [MS-NLMP] §4.2.4's vectors; check.mjs runs it.
// buildNegotiate/buildAuthenticate are a client, for check.mjs only.
import crypto from 'node:crypto';

// ---- MD4 (RFC 1320) ----

export function md4(input) {
  const msg = Buffer.from(input);
  const len = msg.length;
  const padded = Buffer.alloc(((len + 8) >> 6) * 64 + 64);
  msg.copy(padded);
  padded[len] = 0x80;
  padded.writeUInt32LE((len * 8) >>> 0, padded.length - 8);
  padded.writeUInt32LE(Math.floor(len / 0x20000000), padded.length - 4);
  let [a, b, c, d] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  const rotl = (x, s) => ((x << s) | (x >>> (32 - s))) >>> 0;
  const F = (x, y, z) => (x & y) | (~x & z);
  const G = (x, y, z) => (x & y) | (x & z) | (y & z);
  const H = (x, y, z) => x ^ y ^ z;
  for (let off = 0; off < padded.length; off += 64) {
    const X = [];
    for (let i = 0; i < 16; i++) X.push(padded.readUInt32LE(off + 4 * i));
    const [aa, bb, cc, dd] = [a, b, c, d];
    const r1 = [3, 7, 11, 19];
    for (let i = 0; i < 16; i++) {
      const t = rotl((a + F(b, c, d) + X[i]) >>> 0, r1[i % 4]);
      [a, b, c, d] = [d, t, b, c];
    }
    const r2 = [3, 5, 9, 13];
    for (let i = 0; i < 16; i++) {
      const k = (i % 4) * 4 + Math.floor(i / 4);
      const t = rotl((a + G(b, c, d) + X[k] + 0x5a827999) >>> 0, r2[i % 4]);
      [a, b, c, d] = [d, t, b, c];
    }
    const r3 = [3, 9, 11, 15];
    const order = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
    for (let i = 0; i < 16; i++) {
      const t = rotl((a + H(b, c, d) + X[order[i]] + 0x6ed9eba1) >>> 0, r3[i % 4]);
      [a, b, c, d] = [d, t, b, c];
    }
    a = (a + aa) >>> 0; b = (b + bb) >>> 0; c = (c + cc) >>> 0; d = (d + dd) >>> 0;
  }
  const out = Buffer.alloc(16);
  [a, b, c, d].forEach((v, i) => out.writeUInt32LE(v, 4 * i));
  return out;
}

// ---- NTLMv2 ----

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
const utf16 = (s) => Buffer.from(String(s), 'utf16le');
const hmacMd5 = (key, ...data) => {
  const h = crypto.createHmac('md5', key);
  for (const d of data) h.update(d);
  return h.digest();
};

export const NEGOTIATE_UNICODE = 0x00000001;
const FLAGS_CHALLENGE = 0xe28a8215 >>> 0;  // UNICODE, REQUEST_TARGET, NTLM, ALWAYS_SIGN, TARGET_TYPE_DOMAIN, EXTENDED_SESSIONSECURITY, TARGET_INFO, VERSION, 128, KEY_EXCH, 56

// NTOWFv2 (§3.3.2).
export function responseKeyNT(password, user, domain) {
  return hmacMd5(md4(utf16(password)), utf16(String(user).toUpperCase() + String(domain)));
}

// The NTProofStr of `temp` (the NTLMv2_CLIENT_CHALLENGE as sent) under `serverChallenge`.
export function ntProofStr(password, user, domain, serverChallenge, temp) {
  return hmacMd5(responseKeyNT(password, user, domain), serverChallenge, temp);
}

// The message type of a decoded NTLMSSP message (1, 2, 3), or 0.
export function messageType(buf) {
  if (!Buffer.isBuffer(buf) || buf.length < 12 || !buf.subarray(0, 8).equals(SIGNATURE)) return 0;
  return buf.readUInt32LE(8);
}

function field(buf, at) {
  const len = buf.readUInt16LE(at);
  const off = buf.readUInt32LE(at + 4);
  if (off + len > buf.length) throw new Error('field outside the message');
  return buf.subarray(off, off + len);
}

export function avPairs(pairs) {
  const parts = [];
  for (const [id, value] of pairs) {
    const v = utf16(value);
    const h = Buffer.alloc(4);
    h.writeUInt16LE(id, 0);
    h.writeUInt16LE(v.length, 2);
    parts.push(h, v);
  }
  parts.push(Buffer.alloc(4));  // MsvAvEOL
  return Buffer.concat(parts);
}

// The CHALLENGE_MESSAGE (§2.2.1.2) for `serverChallenge`, naming the server and domain.
export function buildChallenge(serverChallenge, { domain, server, dnsDomain, dnsServer }) {
  const target = utf16(domain);
  const info = avPairs([[2, domain], [1, server], [4, dnsDomain], [3, dnsServer]]);
  const head = Buffer.alloc(56);
  SIGNATURE.copy(head, 0);
  head.writeUInt32LE(2, 8);
  head.writeUInt16LE(target.length, 12); head.writeUInt16LE(target.length, 14);
  head.writeUInt32LE(56, 16);
  head.writeUInt32LE(FLAGS_CHALLENGE, 20);
  serverChallenge.copy(head, 24);
  head.writeUInt16LE(info.length, 40); head.writeUInt16LE(info.length, 42);
  head.writeUInt32LE(56 + target.length, 44);
  Buffer.from([0x0a, 0x00, 0x63, 0x45, 0, 0, 0, 0x0f]).copy(head, 48);  // version 10.0.17763
  return Buffer.concat([head, target, info]);
}

// The fields of an AUTHENTICATE_MESSAGE (§2.2.1.3).
export function parseAuthenticate(buf) {
  if (messageType(buf) !== 3 || buf.length < 64) throw new Error('not an NTLM AUTHENTICATE message');
  const flags = buf.readUInt32LE(60);
  const text = (b) => (flags & NEGOTIATE_UNICODE ? b.toString('utf16le') : b.toString('latin1'));
  return {
    lm: field(buf, 12), nt: field(buf, 20), domain: text(field(buf, 28)),
    user: text(field(buf, 36)), workstation: text(field(buf, 44)), flags,
  };
}

// Checks an AUTHENTICATE message against the challenge it answers. `lookup(user, domain)`
// gives the account ({password, ...}) or null. Answers {ok, account, user, domain, reason}.
export function verifyAuthenticate(buf, serverChallenge, lookup) {
  let m;
  try {
    m = parseAuthenticate(buf);
  } catch (err) {
    return { ok: false, reason: err.message };
  }
  const who = { user: m.user, domain: m.domain };
  if (m.nt.length === 24) return { ok: false, ...who, reason: 'NTLMv1 response refused (NTLMv2 only)' };
  if (m.nt.length < 48) return { ok: false, ...who, reason: 'no NTLMv2 response' };
  const account = lookup(m.user, m.domain);
  if (!account) return { ok: false, ...who, reason: 'unknown user' };
  const proof = m.nt.subarray(0, 16);
  const temp = m.nt.subarray(16);
  if (temp[0] !== 1 || temp[1] !== 1) return { ok: false, ...who, reason: 'bad NTLMv2 client challenge' };
  const want = ntProofStr(account.password, m.user, m.domain, serverChallenge, temp);
  if (!crypto.timingSafeEqual(want, proof)) return { ok: false, ...who, reason: 'wrong password' };
  return { ok: true, account, ...who };
}

// ---- a client, for check.mjs ----

export function buildNegotiate() {
  const b = Buffer.alloc(32);
  SIGNATURE.copy(b, 0);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(0xa2088207 >>> 0, 12);
  return b;
}

export function parseChallenge(buf) {
  if (messageType(buf) !== 2) throw new Error('not an NTLM CHALLENGE message');
  return { serverChallenge: buf.subarray(24, 32), targetInfo: field(buf, 40), flags: buf.readUInt32LE(20) };
}

// An AUTHENTICATE message with an NTLMv2 response, as a Windows client builds it.
export function buildAuthenticate(challenge, { user, domain, password, workstation = 'CHECK' },
  { clientChallenge = crypto.randomBytes(8), time = null } = {}) {
  const ts = Buffer.alloc(8);
  const t = time ?? (BigInt(Date.now()) * 10000n + 116444736000000000n);
  ts.writeBigUInt64LE(BigInt(t));
  const temp = Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), ts, clientChallenge,
    Buffer.alloc(4), challenge.targetInfo, Buffer.alloc(4)]);
  const proof = ntProofStr(password, user, domain, challenge.serverChallenge, temp);
  const nt = Buffer.concat([proof, temp]);
  const lm = Buffer.alloc(24);
  const payload = [lm, nt, utf16(domain), utf16(user), utf16(workstation), Buffer.alloc(0)];
  const head = Buffer.alloc(64);
  SIGNATURE.copy(head, 0);
  head.writeUInt32LE(3, 8);
  let off = 64;
  payload.forEach((p, i) => {
    head.writeUInt16LE(p.length, 12 + 8 * i);
    head.writeUInt16LE(p.length, 14 + 8 * i);
    head.writeUInt32LE(off, 16 + 8 * i);
    off += p.length;
  });
  head.writeUInt32LE(0xe2888215 >>> 0, 60);
  return Buffer.concat([head, ...payload]);
}

// ---- [MS-NLMP] §4.2 test vectors ----

// §4.2.4.3: the AUTHENTICATE_MESSAGE of the NTLMv2 example (User "User", UserDom "Domain",
// Passwd "Password", ServerChallenge 0123456789abcdef, ClientChallenge aaaaaaaaaaaaaaaa,
// Time 0, target info NetBIOS domain "Domain" and server "Server").
const SPEC_AUTHENTICATE = Buffer.from(
  '4e544c4d535350000300000018001800' + '6c00000054005400840000000c000c00' +
  '48000000080008005400000010001000' + '5c00000010001000d8000000358288e2' +
  '0501280a0000000f44006f006d006100' + '69006e00550073006500720043004f00' +
  '4d005000550054004500520086c35097' + 'ac9cec102554764a57cccc19aaaaaaaa' +
  'aaaaaaaa68cd0ab851e51c96aabc927b' + 'ebef6a1c010100000000000000000000' +
  '00000000aaaaaaaaaaaaaaaa00000000' + '02000c0044006f006d00610069006e00' +
  '01000c00530065007200760065007200' + '0000000000000000c5dad2544fc97990' +
  '94ce1ce90bc9d03e', 'hex');

// Throws unless MD4, NTOWFv2, NTProofStr and the AUTHENTICATE check reproduce §4.2.
export function selfTest() {
  const eq = (got, hex, what) => {
    if (Buffer.from(got).toString('hex') !== hex) throw new Error(`${what}: ${Buffer.from(got).toString('hex')} != ${hex}`);
  };
  eq(md4(''), '31d6cfe0d16ae931b73c59d7e0c089c0', 'MD4("") (RFC 1320)');
  eq(md4('abc'), 'a448017aaf21d8525fc10ae87aa6729d', 'MD4("abc") (RFC 1320)');
  eq(md4(utf16('Password')), 'a4f49c406510bdcab6824ee7c30fd852', 'NTOWFv1 (§4.2.2.1.2)');
  eq(responseKeyNT('Password', 'User', 'Domain'), '0c868a403bfd7a93a3001ef22ef02e3f', 'NTOWFv2 (§4.2.4.1.1)');
  const serverChallenge = Buffer.from('0123456789abcdef', 'hex');
  const spec = parseAuthenticate(SPEC_AUTHENTICATE);
  eq(spec.nt.subarray(0, 16), '68cd0ab851e51c96aabc927bebef6a1c', 'NTProofStr as sent (§4.2.4.2.2)');
  eq(ntProofStr('Password', 'User', 'Domain', serverChallenge, spec.nt.subarray(16)),
    '68cd0ab851e51c96aabc927bebef6a1c', 'NTProofStr computed (§4.2.4.2.2)');
  const lookup = (pw) => (user, domain) => (user === 'User' && domain === 'Domain' ? { password: pw } : null);
  if (!verifyAuthenticate(SPEC_AUTHENTICATE, serverChallenge, lookup('Password')).ok) {
    throw new Error('the §4.2.4.3 AUTHENTICATE message was refused with the right password');
  }
  const wrong = verifyAuthenticate(SPEC_AUTHENTICATE, serverChallenge, lookup('password'));
  if (wrong.ok || wrong.reason !== 'wrong password') throw new Error('a wrong password was accepted');
  const otherChallenge = verifyAuthenticate(SPEC_AUTHENTICATE, Buffer.alloc(8), lookup('Password'));
  if (otherChallenge.ok) throw new Error('an answer to another challenge was accepted');
  return true;
}
