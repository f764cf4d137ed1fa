import { XMLParser } from 'fast-xml-parser';

/** An XML-RPC value: int, double, boolean, string, nil, base64 (bytes), array or struct. */
export type XmlRpcValue =
  | string
  | number
  | boolean
  | null
  | Uint8Array
  | readonly XmlRpcValue[]
  | { readonly [member: string]: XmlRpcValue };

/** The server answered with an XML-RPC `<fault>`. */
export class XmlRpcFault extends Error {
  override readonly name = 'XmlRpcFault';
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(`XML-RPC fault ${faultCode}: ${faultString}`);
  }
}

/** Escapes text for an XML element's content. */
export const escapeXml = (s: string): string =>
  s.replace(/[<>&]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&amp;'));

const encodeValue = (v: XmlRpcValue): string => {
  if (v === null) return '<nil/>';
  if (typeof v === 'string') return `<string>${escapeXml(v)}</string>`;
  if (typeof v === 'boolean') return `<boolean>${v ? 1 : 0}</boolean>`;
  if (typeof v === 'number')
    return Number.isSafeInteger(v) && Math.abs(v) < 2 ** 31 ? `<int>${v}</int>` : `<double>${v}</double>`;
  if (v instanceof Uint8Array) return `<base64>${Buffer.from(v).toString('base64')}</base64>`;
  if (Array.isArray(v))
    return `<array><data>${v.map((x: XmlRpcValue) => `<value>${encodeValue(x)}</value>`).join('')}</data></array>`;
  const members = Object.entries(v).map(
    ([k, x]) => `<member><name>${escapeXml(k)}</name><value>${encodeValue(x)}</value></member>`,
  );
  return `<struct>${members.join('')}</struct>`;
};

/** The `<methodCall>` document for `method` with `params`. */
export const encodeCall = (method: string, params: readonly XmlRpcValue[]): string =>
  `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>${escapeXml(method)}</methodName><params>${params
    .map((p) => `<param><value>${encodeValue(p)}</value></param>`)
    .join('')}</params></methodCall>`;

type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  htmlEntities: false,
});

const tagOf = (n: XmlNode): string => Object.keys(n).find((k) => k !== ':@') ?? '';
const childrenOf = (n: XmlNode): XmlNode[] => (Array.isArray(n[tagOf(n)]) ? (n[tagOf(n)] as XmlNode[]) : []);
const textOf = (nodes: XmlNode[]): string =>
  nodes.map((n) => (tagOf(n) === '#text' ? String(n['#text']) : '')).join('');
const elementsOf = (nodes: XmlNode[]): XmlNode[] => {
  const els = nodes.filter((n) => tagOf(n) !== '#text');
  if (els.length > 0 && textOf(nodes).trim() !== '')
    throw new Error('malformed XML-RPC: text beside elements');
  return els;
};
const only = (nodes: XmlNode[], tag: string): XmlNode => {
  const [el, ...rest] = elementsOf(nodes);
  if (!el || rest.length > 0 || tagOf(el) !== tag)
    throw new Error(`malformed XML-RPC: expected one <${tag}>`);
  return el;
};

const integer = (s: string): number => {
  if (!/^[+-]?\d+$/.test(s.trim())) throw new Error(`malformed XML-RPC int: ${JSON.stringify(s)}`);
  return Number(s.trim());
};

const decodeTyped = (el: XmlNode): XmlRpcValue => {
  const kids = childrenOf(el);
  switch (tagOf(el)) {
    case 'string':
    case 'dateTime.iso8601':
      return textOf(kids);
    case 'int':
    case 'i4':
    case 'i8':
      return integer(textOf(kids));
    case 'double':
      return Number(textOf(kids).trim());
    case 'boolean':
      return textOf(kids).trim() === '1';
    case 'nil':
      return null;
    case 'base64':
      return new Uint8Array(Buffer.from(textOf(kids), 'base64'));
    case 'array':
      return elementsOf(childrenOf(only(kids, 'data'))).map((v) => decodeValue(v));
    case 'struct':
      return Object.fromEntries(
        elementsOf(kids).map((m) => {
          const parts = elementsOf(childrenOf(m));
          const name = parts.find((p) => tagOf(p) === 'name');
          const value = parts.find((p) => tagOf(p) === 'value');
          if (!name || !value) throw new Error('malformed XML-RPC struct member');
          return [textOf(childrenOf(name)), decodeValue(value)];
        }),
      );
    default:
      throw new Error(`unsupported XML-RPC type <${tagOf(el)}>`);
  }
};

const decodeValue = (value: XmlNode): XmlRpcValue => {
  if (tagOf(value) !== 'value') throw new Error(`malformed XML-RPC: <${tagOf(value)}> where <value> belongs`);
  const kids = childrenOf(value);
  const [typed, ...rest] = elementsOf(kids);
  if (!typed) return textOf(kids);
  if (rest.length > 0) throw new Error('malformed XML-RPC: a <value> holds one value');
  return decodeTyped(typed);
};

/** The value of a `<methodResponse>`; throws {@link XmlRpcFault} for a fault, Error when malformed. */
export const decodeResponse = (xml: string): XmlRpcValue => {
  const root = only(parser.parse(xml) as XmlNode[], 'methodResponse');
  const [body] = elementsOf(childrenOf(root));
  if (body && tagOf(body) === 'fault') {
    const fault = decodeValue(only(childrenOf(body), 'value')) as Record<string, XmlRpcValue>;
    const code = typeof fault.faultCode === 'number' ? fault.faultCode : 0;
    throw new XmlRpcFault(code, typeof fault.faultString === 'string' ? fault.faultString : 'unknown fault');
  }
  if (!body || tagOf(body) !== 'params') throw new Error('malformed XML-RPC: no <params> nor <fault>');
  return decodeValue(only(childrenOf(only(childrenOf(body), 'param')), 'value'));
};

/**
 * Calls `method` on the XML-RPC server at `url` (HTTP POST, `text/xml`). Throws {@link XmlRpcFault}
 * for a fault, and a plain Error for an HTTP, transport or parse failure.
 */
export const callXmlRpc = async (
  url: string,
  method: string,
  params: readonly XmlRpcValue[],
  timeoutMs: number,
): Promise<XmlRpcValue> => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    body: encodeCall(method, params),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
  return decodeResponse(text);
};
