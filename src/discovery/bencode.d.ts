// Types for the parts of the `bencode` package (webtorrent, pure JS) discovery uses.

declare module 'bencode' {
  const bencode: {
    encode(value: unknown): Uint8Array;
    decode(data: Uint8Array): unknown;
  };
  export default bencode;
}
