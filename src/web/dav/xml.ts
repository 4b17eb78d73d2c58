// WebDAV request bodies: bounded, parsed without DTDs or entities (XML bombs and external entities are refused
// outright), namespace-aware; and the small helpers that write multistatus answers.

import { DOMParser, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';
import { HttpRefusal } from '../http.js';

export const DAV_NS = 'DAV:';
/** PROPFIND, PROPPATCH and LOCK bodies are small; more is refused before parsing. */
export const MAX_XML_BODY_BYTES = 256 * 1024;
const MAX_ELEMENTS = 10_000;

/** The whole body of a request, at most `MAX_XML_BODY_BYTES` (413 beyond). */
export async function readBoundedBody(req: NodeJS.ReadableStream, limit = MAX_XML_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // The rest of the body is not read: the connection closes after the answer.
    if (size > limit) throw new HttpRefusal(413, 'BODY_TOO_LARGE', `the request body may have at most ${limit} bytes`, { Connection: 'close' });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function badXml(message: string): HttpRefusal {
  return new HttpRefusal(400, 'BAD_XML', `the request body is not usable XML: ${message}`);
}

/**
 * The document of a request body, or undefined for an empty one. A DOCTYPE (the door to entity
 * expansion and external entities) is refused before the parser sees it; so is malformed XML.
 */
export function parseXmlBody(body: Buffer): Document | undefined {
  if (body.length === 0) return undefined;
  const text = body.toString('utf8');
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw new HttpRefusal(400, 'XML_DTD', 'XML with a DOCTYPE or entity declarations is refused');
  }
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level: string, message: string) => {
        if (level !== 'warning') throw badXml(message);
      },
    }).parseFromString(text, 'application/xml');
  } catch (err) {
    if (err instanceof HttpRefusal) throw err;
    throw badXml((err as Error).message);
  }
  const root = doc.documentElement;
  if (!root) throw badXml('no root element');
  if (doc.getElementsByTagName('*').length > MAX_ELEMENTS) throw badXml(`more than ${MAX_ELEMENTS} elements`);
  checkNamespaces(root);
  return doc;
}

/** `xmlns:p=""` is not allowed by Namespaces in XML (an empty prefixed binding). */
function checkNamespaces(element: Element): void {
  for (let i = 0; i < element.attributes.length; i++) {
    const attr = element.attributes.item(i)!;
    if (attr.name.startsWith('xmlns:') && attr.value === '') throw badXml(`empty namespace for prefix '${attr.name.slice(6)}'`);
  }
  for (const child of elementChildren(element)) checkNamespaces(child);
}

export function elementChildren(element: Element): Element[] {
  const out: Element[] = [];
  for (let node = element.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === 1) out.push(node as Element);
  }
  return out;
}

export function isDav(element: Element, localName: string): boolean {
  return element.namespaceURI === DAV_NS && element.localName === localName;
}

export function davChild(element: Element, localName: string): Element | undefined {
  return elementChildren(element).find((child) => isDav(child, localName));
}

/** A property's key: `{namespace}name` (empty braces for no namespace). */
export function propKey(element: Element): string {
  return `{${element.namespaceURI ?? ''}}${element.localName}`;
}

export function splitPropKey(key: string): { ns: string; name: string } {
  const end = key.indexOf('}');
  return { ns: key.slice(1, end), name: key.slice(end + 1) };
}

/** An empty element for a property key, with its namespace declared on it. */
export function emptyProp(key: string): string {
  const { ns, name } = splitPropKey(key);
  if (ns === DAV_NS) return `<D:${name}/>`;
  if (ns === '') return `<${name} xmlns=""/>`;
  return `<x:${name} xmlns:x="${escapeXml(ns)}"/>`;
}

/** An element as text, with the namespace declarations it needs (what a dead property stores). */
export function serializeElement(element: Element): string {
  return new XMLSerializer().serializeToString(element);
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!);
}

export const XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n';
