import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CopyDataTap } from '../../lib/clients/copy-data-tap';
import type { CopyDataSink } from '../../lib/clients/copy-data-tap';

/** One backend message: type byte, length (counting itself), body. */
function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** Splits a byte stream into messages (whole ones only), as postgres.js's framing does. */
class FakeClient {
  received: Buffer[] = [];
  private pending = Buffer.alloc(0);
  constructor(private readonly onMessage: (type: string) => void) {}
  data(bytes: Buffer): void {
    // postgres.js may keep a view of the bytes (a partial message): copy, as it would be kept.
    this.received.push(Buffer.from(bytes));
    this.pending = Buffer.concat([this.pending, bytes]);
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < length + 1) break;
      this.onMessage(String.fromCharCode(this.pending[0]!));
      this.pending = this.pending.subarray(length + 1);
    }
  }
}

interface Scenario {
  before: Buffer[];
  rows: Buffer[];
  /** Asynchronous messages (a notice) inserted before the row of the same index. */
  noticesBefore: Set<number>;
  after: Buffer[];
}

/** What the tap must hand on: everything but the tapped COPY's rows. */
function expectedHandedOn(s: Scenario): Buffer {
  return Buffer.concat([
    ...s.before,
    message('H', Buffer.from([0, 0, 1, 0, 0])),
    ...s.rows.flatMap((_, k) => (s.noticesBefore.has(k) ? [message('N', Buffer.from(`notice ${k}\0`))] : [])),
    message('c', Buffer.alloc(0)),
    ...s.after,
  ]);
}

function wire(s: Scenario): Buffer {
  return Buffer.concat([
    ...s.before,
    message('H', Buffer.from([0, 0, 1, 0, 0])),
    ...s.rows.flatMap((row, k) => [...(s.noticesBefore.has(k) ? [message('N', Buffer.from(`notice ${k}\0`))] : []), message('d', row)]),
    message('c', Buffer.alloc(0)),
    ...s.after,
  ]);
}

/** Feeds the wire bytes in chunks cut at the given places; the fake client attaches `sink` at the CopyOutResponse. */
function run(bytes: Buffer, cuts: number[], sink: CopyDataSink & { pausesAfterEnd?: number }) {
  const flow = { pauses: 0, resumes: 0, pausedAfterCopy: false };
  let copyEnded = false;

  const client = new FakeClient((type) => {
    if (type === 'H') CopyDataTap.dispatching()!.attach(sink);
    if (type === 'c') copyEnded = true;
  });
  const tap = new CopyDataTap((b) => client.data(b), {
    pause: () => {
      flow.pauses += 1;
      if (copyEnded) flow.pausedAfterCopy = true;
    },
    resume: () => (flow.resumes += 1),
  });
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point <= from) continue;
    // A fresh buffer per chunk, as a socket gives: the tap may rewrite it in place.
    tap.receive(Buffer.from(bytes.subarray(from, point)));
    from = point;
  }
  return { handedOn: Buffer.concat(client.received), flow, tap };
}

const row = fc.uint8Array({ minLength: 0, maxLength: 300 }).map((a) => Buffer.from(a));
const otherMessage = fc
  .tuple(fc.constantFrom('T', 'D', 'C', 'Z', 'S', 'N', 'd'), fc.uint8Array({ maxLength: 80 }))
  .map(([type, body]) => message(type, Buffer.from(body)));

describe('CopyDataTap', () => {
  it('hands on every message but the tapped COPY rows, whatever the chunking; the sink gets the rows, in order, and counts them', () => {
    fc.assert(
      fc.property(
        fc.array(otherMessage, { maxLength: 5 }),
        fc.array(row, { maxLength: 60 }),
        fc.array(fc.nat(40), { maxLength: 4 }),
        fc.array(otherMessage, { maxLength: 5 }),
        fc.array(fc.nat(20_000), { maxLength: 40 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
        (before, rows, notices, after, cuts, answers) => {
          const scenario: Scenario = { before, rows, noticesBefore: new Set(notices), after };
          const received: Buffer[] = [];
          let call = 0;
          const sink = {
            rows: 0,
            write(bytes: Buffer) {
              received.push(Buffer.from(bytes));
              call += 1;
              return answers[call % answers.length]!;
            },
          };
          const { handedOn, flow } = run(wire(scenario), cuts, sink);
          expect(handedOn.equals(expectedHandedOn(scenario))).toBe(true);
          expect(Buffer.concat(received).equals(Buffer.concat(rows))).toBe(true);
          expect(sink.rows).toBe(rows.length);
          expect(flow.pausedAfterCopy).toBe(false);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('splits at every byte: one-byte chunks give the same result as one chunk', () => {
    const scenario: Scenario = {
      before: [message('T', Buffer.from('row description')), message('Z', Buffer.from('I'))],
      rows: [Buffer.from('id,name\n'), Buffer.from('1,"a, b"\n'), Buffer.alloc(0), Buffer.from('2,c\n')],
      noticesBefore: new Set([2]),
      after: [message('C', Buffer.from('COPY 2\0')), message('Z', Buffer.from('I')), message('d', Buffer.from('not tapped'))],
    };
    const bytes = wire(scenario);
    const everyByte = Array.from({ length: bytes.length }, (_, k) => k);
    const received: Buffer[] = [];
    const sink = { rows: 0, write: (b: Buffer) => (received.push(Buffer.from(b)), true) };
    const { handedOn } = run(bytes, everyByte, sink);
    expect(handedOn.equals(expectedHandedOn(scenario))).toBe(true);
    expect(Buffer.concat(received).toString()).toBe('id,name\n1,"a, b"\n2,c\n');
    expect(sink.rows).toBe(4);
  });

  it('passes a COPY through untouched when nobody attaches a sink', () => {
    const bytes = Buffer.concat([message('H', Buffer.from([0, 0, 0])), message('d', Buffer.from('a\n')), message('c', Buffer.alloc(0)), message('Z', Buffer.from('I'))]);
    const client = new FakeClient(() => {});
    const tap = new CopyDataTap((b) => client.data(b), { pause() {}, resume() {} });
    tap.receive(Buffer.from(bytes.subarray(0, 9)));
    tap.receive(Buffer.from(bytes.subarray(9)));
    expect(Buffer.concat(client.received).equals(bytes)).toBe(true);
  });

  it('refuses a sink outside the handling of a CopyOutResponse', () => {
    const tap = new CopyDataTap(() => {}, { pause() {}, resume() {} });
    expect(() => tap.attach({ rows: 0, write: () => true })).toThrow(/CopyOutResponse/);
  });
});
