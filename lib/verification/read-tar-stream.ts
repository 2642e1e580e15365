const BLOCK = 512;
/** pax and GNU long-name records are a few hundred bytes; anything near this is not a real one. */
const MAX_EXTENDED_HEADER = 1024 * 1024;

export interface TarEntryHeader {
  name: string;
  size: number;
  kind: 'file' | 'directory' | 'other';
  /** The raw type flag, for messages about entries of another kind. */
  typeFlag: string;
}

/** What a reader is told as the archive streams past; chunks are views of the input, valid only during the call. */
export interface TarEntryHandler {
  entry(header: TarEntryHeader): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
}

/** The archive is not a well-formed tar stream (bad header checksum, data after the end marker...). */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

/** The archive stopped before its end-of-archive marker (two zero blocks). */
export class TarTruncatedError extends Error {
  override readonly name = 'TarTruncatedError';
}

type State = 'header' | 'data' | 'extended' | 'padding' | 'end';

/**
 * A push parser of ustar/pax/GNU tar, for reading an archive as it streams (bounded memory: one
 * header block, plus a pax record while one is read). Written here rather than taken from
 * tar-stream because a verifier must know whether the archive is whole: tar-stream's extractor
 * accepts an archive cut off at an entry boundary, with no end-of-archive marker, as complete.
 *
 * Understands what archiver (tar-stream's packer) and GNU tar write: ustar names with a prefix,
 * pax `path` and `size` records, GNU long names, base-256 sizes. Entry data is passed through
 * as views of the input chunks, never copied.
 */
export class TarStreamReader {
  private state: State = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  private remaining = 0;
  private zeroBlocks = 0;
  private offset = 0;
  private current: TarEntryHeader | undefined;
  private extended: Buffer[] = [];
  private extendedType = '';
  private pendingName: string | undefined;
  private pendingSize: number | undefined;
  private paddingAfter = 0;

  constructor(private readonly handler: TarEntryHandler) {}

  write(chunk: Buffer): void {
    let position = 0;
    while (position < chunk.length) {
      const available = chunk.length - position;
      switch (this.state) {
        case 'header': {
          const take = Math.min(BLOCK - this.blockFill, available);
          chunk.copy(this.block, this.blockFill, position, position + take);
          this.blockFill += take;
          position += take;
          if (this.blockFill === BLOCK) {
            this.blockFill = 0;
            this.readHeader();
            this.offset += BLOCK;
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, available);
          this.handler.data(chunk.subarray(position, position + take));
          position += take;
          this.advance(take);
          if (this.remaining === 0) {
            this.handler.entryEnd();
            this.current = undefined;
            this.startPadding();
          }
          break;
        }
        case 'extended': {
          const take = Math.min(this.remaining, available);
          this.extended.push(chunk.subarray(position, position + take));
          position += take;
          this.advance(take);
          if (this.remaining === 0) {
            this.readExtendedHeader(Buffer.concat(this.extended));
            this.extended = [];
            this.startPadding();
          }
          break;
        }
        case 'padding': {
          const take = Math.min(this.remaining, available);
          position += take;
          this.advance(take);
          if (this.remaining === 0) this.state = 'header';
          break;
        }
        case 'end': {
          // GNU tar pads the archive to a 10 KiB record with zeros; anything else is not this archive.
          const rest = chunk.subarray(position);
          if (rest.some((byte) => byte !== 0)) {
            throw new TarFormatError(`Data after the end-of-archive marker (at byte ${this.offset + rest.findIndex((b) => b !== 0)})`);
          }
          this.offset += rest.length;
          position = chunk.length;
          break;
        }
      }
    }
  }

  /** Call when the input has ended; throws TarTruncatedError unless the archive ended properly. */
  end(): void {
    if (this.state === 'end') return;
    const where = `after ${this.offset + this.blockFill} bytes of tar`;
    if (this.current) throw new TarTruncatedError(`The archive ends inside ${this.current.name} (${this.remaining} of its ${this.current.size} bytes missing), ${where}`);
    throw new TarTruncatedError(`The archive ends without its end-of-archive marker, ${where}`);
  }

  private advance(bytes: number): void {
    this.remaining -= bytes;
    this.offset += bytes;
  }

  private startPadding(): void {
    this.remaining = this.paddingAfter;
    this.state = this.remaining > 0 ? 'padding' : 'header';
  }

  private readHeader(): void {
    const block = this.block;
    if (isZero(block)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks === 2) this.state = 'end';
      return;
    }
    if (this.zeroBlocks > 0) throw new TarFormatError(`A header follows a lone zero block at byte ${this.offset}`);
    if (!checksumMatches(block)) throw new TarFormatError(`Bad tar header checksum at byte ${this.offset}: not a tar archive, or corrupted`);

    const typeFlag = block[156] === 0 ? '0' : String.fromCharCode(block[156]!);
    const size = readSize(block, this.offset);
    this.paddingAfter = (BLOCK - (size % BLOCK)) % BLOCK;

    if (typeFlag === 'x' || typeFlag === 'g' || typeFlag === 'L' || typeFlag === 'K') {
      if (size > MAX_EXTENDED_HEADER) throw new TarFormatError(`Extended header of ${size} bytes at byte ${this.offset}`);
      this.extendedType = typeFlag;
      this.remaining = size;
      this.state = size > 0 ? 'extended' : 'header';
      return;
    }

    let name = readString(block, 0, 100);
    const magic = readString(block, 257, 6);
    if (magic.startsWith('ustar')) {
      const prefix = readString(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (this.pendingName !== undefined) name = this.pendingName;
    const entrySize = this.pendingSize ?? size;
    this.pendingName = undefined;
    this.pendingSize = undefined;
    this.paddingAfter = (BLOCK - (entrySize % BLOCK)) % BLOCK;

    const kind = typeFlag === '0' || typeFlag === '7' ? 'file' : typeFlag === '5' ? 'directory' : 'other';
    // Links and devices carry no data whatever their size field says.
    const dataSize = typeFlag === '1' || typeFlag === '2' || typeFlag === '3' || typeFlag === '4' || typeFlag === '6' ? 0 : entrySize;
    this.current = { name, size: dataSize, kind, typeFlag };
    this.handler.entry(this.current);
    this.remaining = dataSize;
    if (dataSize === 0) {
      this.handler.entryEnd();
      this.current = undefined;
      this.state = 'header';
    } else {
      this.state = 'data';
    }
  }

  private readExtendedHeader(content: Buffer): void {
    if (this.extendedType === 'L') {
      this.pendingName = readString(content, 0, content.length);
      return;
    }
    if (this.extendedType !== 'x') return; // global pax headers and GNU long link names change nothing here
    for (const [key, value] of parsePaxRecords(content, this.offset)) {
      if (key === 'path') this.pendingName = value;
      if (key === 'size') {
        if (!/^\d+$/.test(value)) throw new TarFormatError(`Bad pax size ${JSON.stringify(value)} before byte ${this.offset}`);
        this.pendingSize = Number(value);
      }
    }
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i += 1) if (block[i] !== 0) return false;
  return true;
}

function checksumMatches(block: Buffer): boolean {
  const recorded = parseInt(readString(block, 148, 8).trim(), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i += 1) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === recorded;
}

function readString(buffer: Buffer, start: number, length: number): string {
  const end = buffer.indexOf(0, start);
  return buffer.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function readSize(block: Buffer, offset: number): number {
  // Base-256 (GNU): sizes of 8 GiB and more do not fit the 11 octal digits.
  if (block[124]! & 0x80) {
    let size = block[124]! & 0x7f;
    for (let i = 125; i < 136; i += 1) size = size * 256 + block[i]!;
    if (!Number.isSafeInteger(size)) throw new TarFormatError(`Entry size too large at byte ${offset}`);
    return size;
  }
  const text = readString(block, 124, 12).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError(`Bad entry size ${JSON.stringify(text)} at byte ${offset}`);
  return text === '' ? 0 : parseInt(text, 8);
}

/** pax records: "<length> <key>=<value>\n", length counting the whole record in bytes. */
function parsePaxRecords(content: Buffer, offset: number): [string, string][] {
  const records: [string, string][] = [];
  let position = 0;
  while (position < content.length && content[position] !== 0) {
    const space = content.indexOf(0x20, position);
    const length = Number(content.toString('latin1', position, space));
    if (space === -1 || !Number.isInteger(length) || length <= 0 || position + length > content.length) {
      throw new TarFormatError(`Bad pax header before byte ${offset}`);
    }
    const record = content.toString('utf8', space + 1, position + length - 1);
    const equals = record.indexOf('=');
    if (equals > 0) records.push([record.slice(0, equals), record.slice(equals + 1)]);
    position += length;
  }
  return records;
}
