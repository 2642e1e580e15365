/**
 * Buffers of one size, handed out and given back once their bytes are no longer needed, to be
 * handed out again: the export otherwise allocates every byte it moves again in new buffers
 * (a 1.27 GB table: its CSV in COPY blocks, its tarball in upload parts), and each allocation of
 * external memory brings V8's next full garbage collection closer.
 */
export class BlockPool {
  private readonly free: Buffer[] = [];

  /** `keep`: the most given-back blocks held for reuse; more are left to the garbage collector. */
  constructor(
    readonly size: number,
    private readonly keep = 16,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** A block from take(), or a view of its first bytes. */
  give(block: Buffer): void {
    // Its blocks have a memory of their own (allocUnsafeSlow), never a slice of Node's shared pool.
    if (block.byteOffset !== 0 || block.buffer.byteLength !== this.size || this.free.length >= this.keep) return;
    this.free.push(Buffer.from(block.buffer, 0, this.size));
  }
}
