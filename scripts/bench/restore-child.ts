/**
 * Our side of `npm run bench:restore`, in a process of its own started as `npm run restore` starts
 * (Node.js running its bundle: scripts/run-bundled.mjs): it loads what scripts/restore.ts loads for
 * a folder of tarballs and nothing else, so its start, CPU seconds and peak RSS are the restore's own, not the bench's (whose
 * s3rver, AWS SDK and export code the restore never loads). Prints its figures as one JSON line.
 *
 * Usage: node scripts/run-bundled.mjs scripts/bench/restore-child.ts '{"folder":…,"url":…,"parallelism":2}'
 */
import './quiet-job-logs';
import '../quiet-sdk-warning';
import { listRestoreSources } from '../../lib/restore/list-restore-sources';
import { restoreSchemas } from '../../lib/restore/restore-schemas';
import type { RestoreEvent } from '../../lib/restore/restore-schemas';

export interface RestoreChildInput {
  folder: string;
  url: string;
  parallelism: number;
}

export interface RestoreChildOutput {
  timeTakenMs: number;
  maxRssKb: number;
  cpuSeconds: number;
  /** Seconds from the start of the restore to each phase's start, in order. */
  phases: { phase: string; atSeconds: number }[];
}

const input = JSON.parse(process.argv[2] ?? '{}') as RestoreChildInput;
const phases: RestoreChildOutput['phases'] = [];
const started = performance.now();
const mark = (phase: string): void => void phases.push({ phase, atSeconds: +((performance.now() - started) / 1000).toFixed(2) });
const sources = await listRestoreSources(input.folder, () => {
  throw new Error('The bench restores from a folder');
});
const result = await restoreSchemas({
  sources,
  targetUrl: input.url,
  parallelism: input.parallelism,
  onProgress: (event: RestoreEvent) => {
    if (event.kind === 'definitions') mark('load');
    else if (event.kind === 'phase') mark(event.phase);
  },
});
mark('done');
const { user, system } = process.cpuUsage();
const output: RestoreChildOutput = { timeTakenMs: result.timeTakenMs, maxRssKb: process.resourceUsage().maxRSS, cpuSeconds: (user + system) / 1e6, phases };
process.stdout.write(`${JSON.stringify(output)}\n`);
