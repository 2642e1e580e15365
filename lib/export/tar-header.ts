/** Tar works in 512-byte blocks: headers are one block, file data is padded to whole blocks. */
export const TAR_BLOCK = 512;

/** The largest size the ustar header's 11 octal digits can hold (8 GiB - 1). */
const USTAR_MAX_SIZE = 0o77777777777;
const USTAR_NAME_BYTES = 100;

export interface TarEntry {
  name: string;
  size: number;
  mtime: Date;
  mode?: number;
}

/**
 * The header block(s) of one regular-file entry, written by hand because the data that follows
 * is already gzip-compressed (see schema-tarball.ts) and no tar writer accepts that.
 *
 * A plain ustar header when the name fits its 100 bytes and the size its 11 octal digits;
 * otherwise a POSIX pax extended header (`path`, `size`) first, which GNU tar, bsdtar, Python's
 * tarfile and tar-stream all read. Names are UTF-8, as GNU tar writes them.
 */
export function tarHeader({ name, size, mtime, mode = 0o644 }: TarEntry): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`A tar entry's size must be a whole number of bytes, not ${size}`);
  const nameBytes = Buffer.from(name, 'utf8');
  const seconds = Math.floor(mtime.getTime() / 1000);
  const pax: Record<string, string> = {};
  if (nameBytes.length > USTAR_NAME_BYTES) pax.path = name;
  if (size > USTAR_MAX_SIZE) pax.size = String(size);
  const main = ustarBlock({
    name: nameBytes.length > USTAR_NAME_BYTES ? truncateUtf8(nameBytes, USTAR_NAME_BYTES) : nameBytes,
    size: size > USTAR_MAX_SIZE ? 0 : size,
    seconds,
    mode,
    type: '0',
  });
  if (Object.keys(pax).length === 0) return main;
  const records = Buffer.concat(Object.entries(pax).map(([key, value]) => paxRecord(key, value)));
  const paxHeader = ustarBlock({ name: Buffer.from('PaxHeader'), size: records.length, seconds, mode: 0o644, type: 'x' });
  return Buffer.concat([paxHeader, records, tarPadding(records.length), main]);
}

/** The zero bytes that bring `size` bytes of entry data up to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);
}

/** Two zero blocks end an archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * TAR_BLOCK);
}

function ustarBlock({ name, size, seconds, mode, type }: { name: Buffer; size: number; seconds: number; mode: number; type: string }): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  name.copy(block, 0, 0, USTAR_NAME_BYTES);
  octal(block, 100, 8, mode);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, seconds);
  block.write(type, 156, 'ascii');
  block.write('ustar\u000000', 257, 'ascii'); // magic "ustar\0" and version "00"
  // The checksum is computed with its own field read as eight spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return block;
}

function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\u0000`, offset, 'ascii');
}

/** A pax record is "<length> <key>=<value>\n", where the length counts its own digits too. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body);
  let length = bodyBytes + 1;
  while (String(length).length + bodyBytes !== length) length = String(length).length + bodyBytes;
  return Buffer.from(`${length}${body}`, 'utf8');
}

/** The first bytes of a name, cut at a character boundary (only a fallback: pax `path` wins). */
function truncateUtf8(bytes: Buffer, max: number): Buffer {
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end);
}
