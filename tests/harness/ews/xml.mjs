// File: tests/harness/ews/xml.mjs — the little XML the EWS stand-in needs (node: modules
// only, like the other stand-ins): a strict parser of SOAP requests into plain objects, the
// escaping for answers, and lookups by local name (namespaces are checked where EWS checks
// them, by the URIs in soap.mjs, not by prefix).
//
//   const doc = parseXml(text);           // {name, prefix, ns, attrs, children, text}
//   const body = child(doc, 'Body');      // by local name
export class XmlError extends Error {}

const ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(text) {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (!(cp > 0 && cp <= 0x10ffff)) throw new XmlError(`bad character reference ${m}`);
      return String.fromCodePoint(cp);
    }
    if (!(e in ENTITIES)) throw new XmlError(`unknown entity ${m}`);
    return ENTITIES[e];
  });
}

export function escapeXml(text) {
  return String(text).replace(/[<>&"']/g, (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`);
}

// Parses a whole document; throws XmlError on anything malformed (also a DOCTYPE: EWS
// refuses DTDs).
export function parseXml(text) {
  let i = 0;
  const s = String(text);
  const stack = [{ children: [], nsMap: { xml: 'http://www.w3.org/XML/1998/namespace' } }];
  const fail = (why) => { throw new XmlError(`${why} at offset ${i}`); };
  while (i < s.length) {
    if (s.startsWith('<?', i)) { i = s.indexOf('?>', i); if (i < 0) fail('unclosed <?'); i += 2; continue; }
    if (s.startsWith('<!--', i)) { i = s.indexOf('-->', i); if (i < 0) fail('unclosed comment'); i += 3; continue; }
    if (s.startsWith('<!DOCTYPE', i)) fail('DTD not allowed');
    if (s.startsWith('<![CDATA[', i)) {
      const end = s.indexOf(']]>', i);
      if (end < 0) fail('unclosed CDATA');
      stack.at(-1).text = (stack.at(-1).text ?? '') + s.slice(i + 9, end);
      i = end + 3;
      continue;
    }
    if (s.startsWith('</', i)) {
      const end = s.indexOf('>', i);
      if (end < 0) fail('unclosed end tag');
      const qname = s.slice(i + 2, end).trim();
      const el = stack.pop();
      if (!el || el.qname !== qname) fail(`end tag </${qname}> does not match`);
      i = end + 1;
      continue;
    }
    if (s[i] === '<') {
      const m = /^<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)((?:\s+[A-Za-z_][\w.\-:]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/.exec(s.slice(i, i + 65536));
      if (!m) fail('malformed tag');
      const parent = stack.at(-1);
      const nsMap = { ...parent.nsMap };
      const rawAttrs = {};
      for (const a of m[2].matchAll(/([A-Za-z_][\w.\-:]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        rawAttrs[a[1]] = decode(a[2] ?? a[3]);
        if (a[1] === 'xmlns') nsMap[''] = rawAttrs[a[1]];
        else if (a[1].startsWith('xmlns:')) nsMap[a[1].slice(6)] = rawAttrs[a[1]];
      }
      const [prefix, name] = m[1].includes(':') ? m[1].split(':') : ['', m[1]];
      if (!(prefix in nsMap) && prefix) fail(`undeclared prefix ${prefix}`);
      const attrs = {};
      for (const [k, v] of Object.entries(rawAttrs)) {
        if (k !== 'xmlns' && !k.startsWith('xmlns:')) attrs[k.includes(':') ? k.split(':')[1] : k] = v;
      }
      const el = { qname: m[1], name, prefix, ns: nsMap[prefix] ?? '', attrs, children: [], text: '', nsMap };
      parent.children.push(el);
      if (!m[3]) stack.push(el);
      i += m[0].length;
      continue;
    }
    const next = s.indexOf('<', i);
    const chunk = s.slice(i, next < 0 ? s.length : next);
    if (stack.length === 1 && chunk.trim()) fail('text outside the root element');
    if (stack.length > 1) stack.at(-1).text += decode(chunk);
    i = next < 0 ? s.length : next;
  }
  if (stack.length !== 1) throw new XmlError(`unclosed element <${stack.at(-1).qname}>`);
  const roots = stack[0].children;
  if (roots.length !== 1) throw new XmlError('expected one root element');
  return roots[0];
}

export const child = (el, name) => el?.children.find((c) => c.name === name);
export const children = (el, name) => el?.children.filter((c) => c.name === name) ?? [];
export const textOf = (el) => (el ? el.text.trim() : undefined);

// The first descendant with this local name (depth first).
export function find(el, name) {
  if (!el) return undefined;
  for (const c of el.children) {
    if (c.name === name) return c;
    const d = find(c, name);
    if (d) return d;
  }
  return undefined;
}
