// The one rule for characters a folder path may hold, everywhere (wire, scanner, puller): no control characters, no bidirectional controls.

/**
 * Characters refused in any path segment, on the wire and on disk alike: C0 controls (NUL, newline,
 * ESC, …), DEL, C1 controls, and the bidirectional marks, embeddings, overrides and isolates
 * (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) that make a name display as another.
 * Everything else a Linux file system holds is a legal name: backslash, colon, `?*<>|"`, a leading
 * dash, a trailing dot or space, `CON`, `aux.txt` (the per-folder "portable names" option is what
 * keeps out names Windows cannot hold).
 */
// eslint-disable-next-line no-control-regex
const REFUSED_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/** Why a path (or one name) is refused for its characters, or undefined when every character is legal. */
export function refusedCharacter(path: string): string | undefined {
  const match = REFUSED_CHARACTER.exec(path);
  if (!match) return undefined;
  const code = match[0].codePointAt(0)!;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  if (code === 0) return 'contains NUL';
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return `contains the control character ${hex}`;
  return `contains the bidirectional control ${hex}`;
}
