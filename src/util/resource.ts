// Base for long-lived objects: idempotent open()/close(), close() waits for a pending open().

export abstract class Resource {
  private opening: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  get opened(): boolean {
    return this.opening !== null && this.closing === null;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Opens once; later calls return the same promise. Opening after close() is an error. */
  open(): Promise<void> {
    if (this.closing) return Promise.reject(new Error(`${this.constructor.name} is closed`));
    if (!this.opening) this.opening = this._open();
    return this.opening;
  }

  /** Closes once; later calls return the same promise. Releases everything the object owns. */
  close(): Promise<void> {
    if (!this.closing) {
      const opening = this.opening;
      this.closing = (async () => {
        if (opening) await opening.catch(() => undefined);
        await this._close();
      })();
    }
    return this.closing;
  }

  protected abstract _open(): Promise<void>;
  protected abstract _close(): Promise<void>;
}
