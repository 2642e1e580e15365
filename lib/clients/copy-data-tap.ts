/**
 * Where a COPY's rows go instead of through postgres.js: `write` gets the rows' bytes (CopyData
 * payloads, back to back; a row may be split between calls) as a view that is only valid during
 * the call, and returns false to ask for a pause until `CopyDataTap.resume()`. `rows` counts the
 * CopyData messages (the server sends one per row, header line included).
 */
export interface CopyDataSink {
  write(bytes: Buffer): boolean;
  rows: number;
}

/**
 * The writing side of a connection's socket, for rows a COPY FROM STDIN sends (openCopyIn frames
 * them itself). Writes go after whatever postgres.js has written, in order, on the same socket.
 */
export interface CopyDataOutput {
  write(bytes: Buffer): boolean;
  cork(): void;
  uncork(): void;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

const COPY_DATA = 0x64; // 'd'
const COPY_OUT_RESPONSE = 0x48; // 'H'
/** Messages the server may send at any time, also in the middle of a COPY: NoticeResponse, ParameterStatus, NotificationResponse. */
const ASYNCHRONOUS = new Set([0x4e, 0x53, 0x41]); // 'N', 'S', 'A'
const HEADER_BYTES = 5; // type (1) + length (4, counting itself)
const NO_BYTES = Buffer.alloc(0);

/**
 * Sits between a connection's socket and postgres.js, and takes a COPY's rows off the wire
 * itself, so that postgres.js never sees them.
 *
 * postgres.js 3.4 handles each CopyData message (one per row: 4.5 million for a 1.27 GB table)
 * as an object of its own: two Buffer views to frame it, a third for its payload, a handler call
 * and a stream push. On the export's largest tables that per-row work, and the garbage it leaves,
 * took more CPU than reading the socket and hashing the CSV together. Here the server's message
 * stream is followed by its framing (type byte and length) only: every message but a tapped
 * COPY's CopyData goes on to postgres.js unchanged (whole socket chunks when nothing is tapped),
 * and a tapped COPY's row payloads are moved together inside the socket's own chunk
 * (copyWithin: no allocation per row) and handed to the sink once per chunk.
 *
 * A sink is attached while postgres.js handles the COPY's CopyOutResponse (see openCopyOut,
 * which finds the tap with `CopyDataTap.dispatching()`), so no row can pass before it; it is
 * detached at the first message that ends the COPY (CopyDone, ErrorResponse, or anything else
 * not asynchronous). postgres.js still sees the CopyOutResponse, the CopyDone or error and what
 * follows, so its own state (the query's result, the connection's readiness) is as before.
 */
export class CopyDataTap {
  /** The tap whose bytes postgres.js is handling right now, if any (only during that synchronous call). */
  static dispatching(): CopyDataTap | undefined {
    return CopyDataTap.handingOn;
  }

  private static handingOn: CopyDataTap | undefined;

  private sink: CopyDataSink | undefined;
  /** The message being read: its header bytes so far, and its body bytes still to come. */
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerLength = 0;
  private bodyLeft = 0;
  /** Whether the current message is a tapped COPY's row (its body goes to the sink, not on). */
  private diverting = false;
  /** Whether the current message is a CopyOutResponse. */
  private copyStarting = false;
  /** True only while a CopyOutResponse is being handed on: the moment a sink may attach. */
  private attaching = false;

  /**
   * @param deliver hands bytes on to postgres.js (the socket's own 'data' listeners)
   * @param flow the socket's pause() and resume()
   * @param output the socket's writing side, for openCopyIn (found, like the tap, with `dispatching()`)
   */
  constructor(
    private readonly deliver: (bytes: Buffer) => void,
    private readonly flow: { pause(): void; resume(): void },
    readonly output?: CopyDataOutput,
  ) {}

  /** Takes the current COPY's rows; only while postgres.js handles its CopyOutResponse. */
  attach(sink: CopyDataSink): void {
    if (!this.attaching) throw new Error('A COPY sink can only be attached while its CopyOutResponse is handled');
    this.sink = sink;
  }

  /** Lets the socket flow again after a sink asked for a pause. */
  resume(): void {
    this.flow.resume();
  }

  // The chunk being read: bytes still to hand on start at passFrom (-1: none); a tapped COPY's
  // payloads are moved down, in place, to [keptFrom, kept) and given to the sink in one piece.
  private chunk: Buffer = NO_BYTES;
  private at = 0;
  private passFrom = -1;
  private keptFrom = 0;
  private kept = 0;
  private wantsPause = false;

  /** One chunk of the server's bytes, as the socket read it. */
  receive(chunk: Buffer): void {
    const end = chunk.length;
    this.chunk = chunk;
    this.at = 0;
    // A message continued from the previous chunk goes on, unless it is a tapped row.
    this.passFrom = this.diverting ? -1 : 0;
    this.keptFrom = this.kept = 0;
    this.wantsPause = false;

    while (this.at < end) {
      const at = this.at;
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, end - at);
        if (this.diverting) {
          if (this.kept !== at) chunk.copyWithin(this.kept, at, at + take);
          this.kept += take;
        }
        this.at += take;
        this.bodyLeft -= take;
        if (this.bodyLeft === 0) this.messageEnded();
        continue;
      }
      if (this.headerLength === 0) {
        // A new message: its type says where it goes.
        const type = chunk[at]!;
        const divert = type === COPY_DATA && this.sink !== undefined;
        if (divert && !this.diverting) this.handOn(at);
        else if (!divert && this.diverting) {
          this.flushKept();
          this.passFrom = at;
        } else if (!divert && this.passFrom < 0) this.passFrom = at;
        this.diverting = divert;
        if (divert) this.sink!.rows += 1;
        else {
          this.copyStarting = type === COPY_OUT_RESPONSE;
          // Anything but a row or an asynchronous message ends a tapped COPY.
          if (this.sink && !ASYNCHRONOUS.has(type)) this.sink = undefined;
        }
        if (end - at >= HEADER_BYTES) {
          // The whole header is in this chunk (the usual case): nothing to copy.
          this.bodyLeft = Math.max(chunk.readUInt32BE(at + 1) - 4, 0);
          this.at += HEADER_BYTES;
          if (this.bodyLeft === 0) this.messageEnded();
          continue;
        }
      }
      // A header split between two socket reads.
      const take = Math.min(HEADER_BYTES - this.headerLength, end - at);
      chunk.copy(this.header, this.headerLength, at, at + take);
      this.headerLength += take;
      this.at += take;
      if (this.headerLength === HEADER_BYTES) {
        this.headerLength = 0;
        this.bodyLeft = Math.max(this.header.readUInt32BE(1) - 4, 0);
        if (this.bodyLeft === 0) this.messageEnded();
      }
    }
    if (this.diverting) this.flushKept();
    else this.handOn(end);
    this.chunk = NO_BYTES;
    // Pause only while the COPY goes on: once it has ended, the connection must keep reading.
    if (this.wantsPause && this.sink) this.flow.pause();
  }

  /** Hands the pending bytes up to `upTo` on to postgres.js. */
  private handOn(upTo: number): void {
    if (this.passFrom >= 0 && upTo > this.passFrom) {
      const bytes = this.chunk.subarray(this.passFrom, upTo);
      CopyDataTap.handingOn = this;
      try {
        this.deliver(bytes);
      } finally {
        CopyDataTap.handingOn = undefined;
      }
    }
    this.passFrom = -1;
    // Only the bytes after those handed on are rewritten: postgres.js may keep a view of a message it has not had whole.
    this.kept = this.keptFrom = upTo;
  }

  private flushKept(): void {
    if (this.kept > this.keptFrom && this.sink && !this.sink.write(this.chunk.subarray(this.keptFrom, this.kept))) this.wantsPause = true;
    this.keptFrom = this.kept;
  }

  private messageEnded(): void {
    if (!this.copyStarting) return;
    // The CopyOutResponse goes on at once, so that openCopyOut attaches its sink before the
    // COPY's first row is read.
    this.copyStarting = false;
    this.attaching = true;
    try {
      this.handOn(this.at);
    } finally {
      this.attaching = false;
    }
  }
}
