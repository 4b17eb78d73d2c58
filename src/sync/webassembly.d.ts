// The part of the WebAssembly JS API Ferry uses (TypeScript declares it only with the DOM library).
declare namespace WebAssembly {
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number });
    readonly buffer: ArrayBuffer;
  }
}
