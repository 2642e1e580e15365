/**
 * Regroups a byte stream into parts of exactly `partBytes` (the last may be shorter, and there
 * is none for an empty stream): S3 wants every part but the last to be at least 5 MiB.
 */
export async function* splitIntoParts(source: AsyncIterable<Uint8Array>, partBytes: number): AsyncGenerator<Buffer> {
  if (!Number.isInteger(partBytes) || partBytes <= 0) throw new RangeError(`partBytes must be a positive integer, not ${partBytes}`);
  let part = Buffer.allocUnsafe(partBytes);
  let used = 0;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(partBytes - used, chunk.length - offset);
      part.set(chunk.subarray(offset, offset + take), used);
      used += take;
      offset += take;
      if (used === partBytes) {
        yield part;
        part = Buffer.allocUnsafe(partBytes);
        used = 0;
      }
    }
  }
  if (used > 0) yield part.subarray(0, used);
}
