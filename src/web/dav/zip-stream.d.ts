// Types for zip-stream 7 (archiver's streaming zip writer), which ships none: only what Ferry uses.
declare module 'zip-stream' {
  import { Transform } from 'node:stream';

  export interface ZipStreamOptions {
    store?: boolean;
    zlib?: { level?: number };
    forceZip64?: boolean;
    comment?: string;
  }

  export interface ZipEntryData {
    name: string;
    date?: Date;
    mode?: number;
    type?: 'file' | 'directory';
  }

  export default class ZipStream extends Transform {
    constructor(options?: ZipStreamOptions);
    entry(source: NodeJS.ReadableStream | Buffer | string | null, data: ZipEntryData, callback: (err?: Error | null) => void): this;
    finalize(): void;
  }
}
