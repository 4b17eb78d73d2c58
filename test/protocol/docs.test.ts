// Drift check: docs/protocol.md's message table names exactly the message types and codes in the code.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { MESSAGE_CODES, MAX_MESSAGE_BYTES } from '../../src/protocol/messages.js';

function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`;
}

test('docs/protocol.md lists every message type with its code, and nothing else', async () => {
  // Tests run from the repository root (node --test build/test/...).
  const doc = await readFile('docs/protocol.md', 'utf8');
  const section = doc.slice(doc.indexOf('## Messages'), doc.indexOf('### File records'));
  const documented = new Map<string, string>();
  for (const match of section.matchAll(/^\|\s*(\w+)\s*\|\s*(0x[0-9a-f]{2})\s*\|/gim)) {
    assert.equal(documented.has(match[1]!), false, `${match[1]} documented twice`);
    documented.set(match[1]!, match[2]!.toLowerCase());
  }
  const inCode = new Map(Object.entries(MESSAGE_CODES).map(([name, code]) => [name, hex(code)]));
  assert.deepEqual(Object.fromEntries([...documented].sort()), Object.fromEntries([...inCode].sort()));
  assert.deepEqual(Object.keys(MAX_MESSAGE_BYTES).sort(), Object.keys(MESSAGE_CODES).sort());
  assert.equal(new Set(Object.values(MESSAGE_CODES)).size, Object.keys(MESSAGE_CODES).length, 'codes are unique');
});
