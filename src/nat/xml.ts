// A small, bounded XML parser for UPnP documents: elements and text only; no DTDs, no custom entities.

import { FerryError } from '../errors.js';

export interface XmlElement {
  /** Local name: the namespace prefix (`s:` in `s:Envelope`) is dropped. */
  name: string;
  children: XmlElement[];
  /** The element's own text (CDATA included), entities decoded. */
  text: string;
}

export interface XmlLimits {
  /** Longest document accepted, in UTF-16 code units (a document read with a byte cap is shorter still). */
  maxChars: number;
  maxDepth: number;
  maxElements: number;
}

/** Generous for a router's description (miniupnpd's is ~4 KB), tiny for a bomb. */
export const DEFAULT_XML_LIMITS: XmlLimits = { maxChars: 128 * 1024, maxDepth: 24, maxElements: 4000 };

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function bad(message: string): FerryError {
  return new FerryError('PROTOCOL', `XML: ${message}`);
}

function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&\s]{0,10});?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) throw bad('bare "&" in text');
    if (name in NAMED_ENTITIES) return NAMED_ENTITIES[name]!;
    const numeric = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (numeric) {
      const code = numeric[1] !== undefined ? parseInt(numeric[1], 16) : Number(numeric[2]);
      if (code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff)) return String.fromCodePoint(code);
    }
    throw bad(`entity '&${name};' is not accepted`);
  });
}

/** Parses `text` into its root element. Throws FerryError('PROTOCOL') on anything malformed or over a limit. */
export function parseXml(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  if (text.length > limits.maxChars) throw bad(`document longer than ${limits.maxChars} characters`);
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let elements = 0;
  let pos = 0;

  const appendText = (raw: string, decode: boolean): void => {
    const top = stack[stack.length - 1];
    if (!top) {
      if (raw.trim() !== '') throw bad('text outside the root element');
      return;
    }
    top.text += decode ? decodeEntities(raw) : raw;
  };

  while (pos < text.length) {
    const lt = text.indexOf('<', pos);
    if (lt < 0) {
      appendText(text.slice(pos), true);
      break;
    }
    if (lt > pos) appendText(text.slice(pos, lt), true);

    if (text.startsWith('<?', lt)) {
      const end = text.indexOf('?>', lt + 2);
      if (end < 0) throw bad('unterminated processing instruction');
      pos = end + 2;
    } else if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt + 4);
      if (end < 0) throw bad('unterminated comment');
      pos = end + 3;
    } else if (text.startsWith('<![CDATA[', lt)) {
      const end = text.indexOf(']]>', lt + 9);
      if (end < 0) throw bad('unterminated CDATA section');
      appendText(text.slice(lt + 9, end), false);
      pos = end + 3;
    } else if (text.startsWith('<!', lt)) {
      // DOCTYPE, ENTITY and friends: the only way to an entity bomb or an external fetch.
      throw bad('document type declarations are not accepted');
    } else if (text.startsWith('</', lt)) {
      const end = text.indexOf('>', lt + 2);
      if (end < 0) throw bad('unterminated end tag');
      const name = localName(text.slice(lt + 2, end).trim());
      const top = stack.pop();
      if (!top || top.name !== name) throw bad(`unexpected end tag </${name}>`);
      pos = end + 1;
    } else {
      const end = tagEnd(text, lt + 1);
      const inner = text.slice(lt + 1, end);
      const selfClosing = inner.endsWith('/');
      const rawName = /^[^\s/>]+/.exec(inner)?.[0];
      if (!rawName) throw bad('element without a name');
      if (++elements > limits.maxElements) throw bad(`more than ${limits.maxElements} elements`);
      const element: XmlElement = { name: localName(rawName), children: [], text: '' };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root) throw bad('more than one root element');
      else root = element;
      if (!selfClosing) {
        stack.push(element);
        if (stack.length > limits.maxDepth) throw bad(`nested deeper than ${limits.maxDepth}`);
      }
      pos = end + 1;
    }
  }
  if (!root) throw bad('no root element');
  if (stack.length > 0) throw bad(`<${stack[stack.length - 1]!.name}> is not closed`);
  return root;
}

/** Index of the '>' that ends a start tag beginning at `from`, skipping quoted attribute values. */
function tagEnd(text: string, from: number): number {
  let quote: string | null = null;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '>') {
      return i;
    } else if (c === '<') {
      break;
    }
  }
  throw bad('unterminated start tag');
}

function localName(name: string): string {
  const colon = name.lastIndexOf(':');
  return colon >= 0 ? name.slice(colon + 1) : name;
}

/** Every descendant of `element` (depth first, document order) named `name`. */
export function findAll(element: XmlElement, name: string, out: XmlElement[] = []): XmlElement[] {
  for (const child of element.children) {
    if (child.name === name) out.push(child);
    findAll(child, name, out);
  }
  return out;
}

/** The first descendant named `name`, or undefined. */
export function findFirst(element: XmlElement, name: string): XmlElement | undefined {
  for (const child of element.children) {
    if (child.name === name) return child;
    const deeper = findFirst(child, name);
    if (deeper) return deeper;
  }
  return undefined;
}

/** Trimmed text of the direct child named `name`, or undefined. */
export function childText(element: XmlElement, name: string): string | undefined {
  return element.children.find((child) => child.name === name)?.text.trim();
}
