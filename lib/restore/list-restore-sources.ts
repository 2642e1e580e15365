import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { isNotFound, openTarballObject } from '../verification/open-tarball-object';
import { RestoreCannotRunError } from './restore-errors';

/** One tarball to restore: where it is, for messages, and a way to read it from the start (as often as needed). */
export interface RestoreSource {
  /** `.local/export/water.tgz`, `s3://bucket/export/water.tgz`. */
  label: string;
  open(): Promise<Readable>;
}

/**
 * The tarballs behind a restore's `<source>`: one `.tgz` file, a folder's `*.tgz` files (as
 * `npm run export:local` leaves them in `.local/export/`), or every `.tgz` object directly under an
 * `s3://bucket/prefix/` (a key ending in `.tgz` is that one object). In name order. Throws
 * RestoreCannotRunError when there is nothing to read.
 */
export async function listRestoreSources(source: string, s3: () => S3Client): Promise<RestoreSource[]> {
  const address = /^s3:\/\/([^/]+)\/?(.*)$/.exec(source);
  if (address) return listS3Sources(s3(), address[1]!, address[2]!);
  let info;
  try {
    info = await stat(source);
  } catch (error) {
    throw new RestoreCannotRunError(`${source}: cannot be read (${(error as { code?: string }).code === 'ENOENT' ? 'no such file or folder' : (error as Error).message})`);
  }
  const open = (path: string) => async (): Promise<Readable> => createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (info.isFile()) return [{ label: source, open: open(source) }];
  const names = (await readdir(source)).filter((name) => name.endsWith('.tgz')).sort();
  if (names.length === 0) throw new RestoreCannotRunError(`${source}: the folder holds no .tgz files`);
  return names.map((name) => ({ label: join(source, name), open: open(join(source, name)) }));
}

async function listS3Sources(s3: S3Client, bucket: string, prefix: string): Promise<RestoreSource[]> {
  const object = (key: string): RestoreSource => ({
    label: `s3://${bucket}/${key}`,
    async open() {
      return (await openTarballObject(s3, { bucket, key })).body;
    },
  });
  if (prefix.endsWith('.tgz')) return [object(prefix)];
  const keys: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      for (const item of page.Contents ?? []) if (item.Key?.endsWith('.tgz')) keys.push(item.Key);
      token = page.NextContinuationToken;
    } while (token);
  } catch (error) {
    throw new RestoreCannotRunError(`s3://${bucket}/${prefix}: cannot be listed (${isNotFound(error) ? 'no such bucket' : (error as Error).message})`);
  }
  if (keys.length === 0) throw new RestoreCannotRunError(`s3://${bucket}/${prefix}: no .tgz objects there`);
  return keys.sort().map(object);
}
