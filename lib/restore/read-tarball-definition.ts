import type { SchemaDefinition } from '../definition/schema-definition';
import { readExportTarball } from '../verification/read-export-tarball';
import { parseSchemaDefinition } from './parse-schema-definition';
import { RestoreCannotRunError, RestoreRefusedError } from './restore-errors';
import type { RestoreSource } from './list-restore-sources';

export interface TarballDefinition {
  source: RestoreSource;
  definition: SchemaDefinition;
  /** definition.json's bytes, to check the tarball read again later is the same one. */
  bytes: Buffer;
}

/** Thrown from the tarball reader's callbacks to stop reading once the first entry is known. */
class StopReading extends Error {
  constructor(readonly found: { bytes: Buffer } | { firstEntry: string }) {
    super('stop reading');
  }
}

/**
 * Reads a tarball's first entry, `<schema>/definition.json`, and stops: the rest is not read.
 * Refuses (RestoreRefusedError) a tarball whose first entry is anything else (an export made
 * before tarballs carried their definition), a broken one, or a definition it cannot parse;
 * RestoreCannotRunError when the source cannot be read at all.
 */
export async function readTarballDefinition(source: RestoreSource): Promise<TarballDefinition> {
  let found: StopReading['found'] | undefined;
  try {
    const stream = await source.open();
    const contents = await readExportTarball(stream, {
      onDefinition(bytes) {
        throw new StopReading({ bytes });
      },
      onCsv({ file }) {
        throw new StopReading({ firstEntry: file });
      },
    });
    if (contents.broken) throw new RestoreRefusedError(`${source.label}: ${contents.broken.message}`);
    if (contents.manifest) found = { firstEntry: contents.entries[0] ?? 'manifest.json' };
  } catch (error) {
    if (error instanceof StopReading) found = error.found;
    else if (error instanceof RestoreRefusedError) throw error;
    else throw new RestoreCannotRunError(`${source.label}: cannot be read (${(error as Error).message})`);
  }
  if (!found || 'firstEntry' in found) {
    throw new RestoreRefusedError(
      `${source.label}: has no definition.json${found ? ` (its first entry is ${found.firstEntry})` : ''}: it was made before export tarballs carried their schema's definition, so its tables cannot be rebuilt. Run a new export`,
    );
  }
  const parsed = parseSchemaDefinition(found.bytes);
  if ('error' in parsed) throw new RestoreRefusedError(`${source.label}: definition.json cannot be read: ${parsed.error}`);
  return { source, definition: parsed.definition, bytes: found.bytes };
}
