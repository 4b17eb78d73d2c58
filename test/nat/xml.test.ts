// The bounded XML parser: what a router's documents need, and refusal of bombs, DTDs and oversized input.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors.js';
import { childText, findAll, findFirst, parseXml } from '../../src/nat/xml.js';
import { descriptionXml, soapFault } from './fake-router.js';

const protocolError = (err: unknown): boolean => isFerryError(err, 'PROTOCOL');

test('parses a device description and a SOAP fault, namespaces dropped', () => {
  const root = parseXml(descriptionXml({ controlUrl: '/ctl/IPConn' }));
  assert.equal(root.name, 'root');
  const types = findAll(root, 'service').map((s) => childText(s, 'serviceType'));
  assert.deepEqual(types, ['urn:schemas-upnp-org:service:Layer3Forwarding:1', 'urn:schemas-upnp-org:service:WANIPConnection:2']);
  const fault = parseXml(soapFault(718, 'ConflictInMappingEntry'));
  assert.equal(fault.name, 'Envelope');
  assert.equal(childText(findFirst(fault, 'UPnPError')!, 'errorCode'), '718');
});

test('decodes the predefined and numeric entities, CDATA, comments and processing instructions', () => {
  const root = parseXml('<?xml version="1.0"?><!-- hi --><a x="1>2"><b>&lt;&amp;&gt;&quot;&apos;&#65;&#x42;</b><c><![CDATA[<raw & text>]]></c><d/></a>');
  assert.equal(childText(root, 'b'), `<&>"'AB`);
  assert.equal(childText(root, 'c'), '<raw & text>');
  assert.equal(childText(root, 'd'), '');
});

test('refuses entity bombs, DTDs, external entities and unknown entities', () => {
  const bomb =
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><root>&lol3;</root>';
  assert.throws(() => parseXml(bomb), protocolError);
  assert.throws(() => parseXml('<!DOCTYPE r SYSTEM "file:///etc/passwd"><root/>'), protocolError);
  assert.throws(() => parseXml('<root>&xxe;</root>'), protocolError);
  assert.throws(() => parseXml('<root>a & b</root>'), protocolError);
  assert.throws(() => parseXml('<root>&#0;</root>'), protocolError);
});

test('refuses huge, deep, wide and malformed documents', () => {
  assert.throws(() => parseXml(`<root>${'x'.repeat(200 * 1024)}</root>`), protocolError);
  assert.throws(() => parseXml('<a>'.repeat(100) + '</a>'.repeat(100)), protocolError);
  assert.throws(() => parseXml(`<root>${'<e/>'.repeat(5000)}</root>`), protocolError);
  for (const bad of ['', 'text', '<a>', '<a></b>', '<a/><b/>', '<a><b></a></b>', '<a x="unterminated></a>', '<></>', '<a><!-- </a>']) {
    assert.throws(() => parseXml(bad), protocolError, bad);
  }
});

test('any input either parses or fails with a PROTOCOL error', () => {
  const piece = fc.constantFrom('<a>', '</a>', '<b/>', '<!--', '-->', '<![CDATA[', ']]>', '&amp;', '&', '<!DOCTYPE', '<?x?>', '"', '>', 'text', ' ');
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.array(piece, { maxLength: 40 }).map((a) => a.join(''))), (input) => {
      try {
        parseXml(input);
      } catch (err) {
        assert.ok(protocolError(err), String(err));
      }
    }),
    { numRuns: 2000 },
  );
});
