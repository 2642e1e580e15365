/**
 * `npm run restore -- <source> --into <postgres URL> [--schemas a,b] [--parallel n]`: loads export
 * tarballs into a database (lib/restore/restore-schemas.ts), checking every table against its
 * manifest, and replaces the schemas there in one transaction.
 *
 * <source>: one .tgz, a folder of <schema>.tgz (`.local/export/`), or s3://bucket/prefix/ (the
 * usual AWS credentials, or S3_ENDPOINT for a local S3 server). Exit 0 restored; 1 refused (a
 * tarball fails its check, the target cannot take a definition or a row, the connection was lost
 * during the load); 2 cannot run (bad arguments, an unreadable source, an unreachable target).
 * Either way nothing is replaced and nothing is left behind unless it says restored.
 */
import './quiet-sdk-warning';
import { listRestoreSources } from '../lib/restore/list-restore-sources';
import { RestoreCannotRunError, RestoreRefusedError } from '../lib/restore/restore-errors';
import { restoreSchemas } from '../lib/restore/restore-schemas';
import type { RestoreEvent } from '../lib/restore/restore-schemas';
import { parseRestoreArguments } from '../lib/restore/restore-arguments';
import { formatBytes, formatCount, formatSeconds, formatTables } from './format-amounts';

async function main(argv: string[]): Promise<number> {
  const parsed = parseRestoreArguments(argv);
  if ('error' in parsed) {
    console.error(parsed.error);
    return 2;
  }
  const { source, into, schemas, parallelism } = parsed;
  const stop = new AbortController();
  process.once('SIGINT', () => {
    console.error('\nStopping: dropping what was built; the target stays as it was...');
    stop.abort(new DOMException('Interrupted', 'AbortError'));
  });
  const progress = new ProgressLines(process.stdout.isTTY === true);
  try {
    // The AWS SDK loaded only for an s3:// source.
    const sources = await listRestoreSources(source, async () => (await import('../lib/clients/s3')).createS3Client({ endpoint: process.env.S3_ENDPOINT || undefined }));
    const result = await restoreSchemas({
      sources,
      targetUrl: into,
      schemas,
      parallelism,
      sourceDatabaseUrl: process.env.DATABASE_URL || undefined,
      onProgress: (event) => progress.hear(event),
      signal: stop.signal,
    });
    progress.clear();
    for (const schema of result.schemas) {
      console.log(
        `restored ${schema.schema}: ${formatTables(schema.tables)}, ${formatCount(schema.rows)} rows, ${formatBytes(schema.bytes)}` +
          `${schema.asOf ? `, as of ${schema.asOf}` : ''}${schema.replacedExisting ? ' (replaced the one that was there)' : ''}`,
      );
    }
    const runs = new Set(result.schemas.map((s) => s.runId));
    if (runs.size > 1) console.log('note: these schemas come from different export runs, so they are not one moment of the database');
    console.log(`Done in ${formatSeconds(result.timeTakenMs)}: every table matched its manifest, and the schemas were replaced in one transaction.`);
    return 0;
  } catch (error) {
    progress.clear();
    if (error instanceof RestoreRefusedError || error instanceof RestoreCannotRunError) {
      console.error(`restore ${error instanceof RestoreRefusedError ? 'refused' : 'cannot run'}: ${error.message}`);
      console.error('Nothing was replaced: the target is as it was.');
      return error.exitCode;
    }
    console.error(`restore failed: ${(error as Error).stack ?? String(error)}`);
    return 2;
  }
}

const PHASES: Record<Extract<RestoreEvent, { kind: 'phase' }>['phase'], string> = {
  'indexes and constraints': 'Building keys, checks and indexes, and analyzing each table',
  'foreign keys': 'Building foreign keys',
  sequences: 'Setting the sequences',
  analyze: 'Running ANALYZE of partitioned tables',
  replacing: 'Replacing the schemas in one transaction',
};

/** Plain lines for a person: a line per table loaded and per phase; on a terminal, a running total. */
class ProgressLines {
  private lastTotal = 0;
  private lastPrinted = 0;
  private started = performance.now();
  private live = false;

  constructor(private readonly tty: boolean) {}

  hear(event: RestoreEvent): void {
    switch (event.kind) {
      case 'definitions':
        this.line(`Restoring ${event.schemas.map((s) => `${s.schema} (${formatTables(s.tables)})`).join(', ')}`);
        this.started = performance.now();
        break;
      case 'leftovers-removed':
        this.line(`Removed what an earlier restore left behind: ${event.schemas.join(', ')}`);
        break;
      case 'table-loaded': {
        const { schema, table, rows, bytes, timeTakenMs } = event.table;
        this.line(`  loaded ${schema}.${table}: ${formatCount(rows)} rows, ${formatBytes(bytes)} in ${formatSeconds(timeTakenMs)}`);
        break;
      }
      case 'bytes': {
        this.lastTotal = event.bytes;
        const now = performance.now();
        if (now - this.lastPrinted < (this.tty ? 500 : 10_000)) break;
        this.lastPrinted = now;
        const seconds = (now - this.started) / 1000;
        const text = `  ... ${formatBytes(event.bytes)} loaded, ${formatBytes(event.bytes / Math.max(seconds, 0.001))}/s`;
        if (this.tty) {
          process.stdout.write(`\r${text}\u001b[K`);
          this.live = true;
        } else {
          console.log(text);
        }
        break;
      }
      case 'phase':
        this.line(`${PHASES[event.phase]}${event.units ? ` (${formatTables(event.units)})` : ''}...`);
        break;
      case 'replace-retry':
        this.line(`  readers hold the old tables; trying again (attempt ${event.attempt + 1}): ${event.message}`);
        break;
      case 'warning':
        this.line(`  note: ${event.message}`);
        break;
    }
  }

  clear(): void {
    if (this.live) process.stdout.write('\r\u001b[K');
    this.live = false;
  }

  private line(text: string): void {
    this.clear();
    console.log(text);
  }
}

process.exitCode = await main(process.argv.slice(2));
