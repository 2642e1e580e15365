export interface RestoreArguments {
  source: string;
  into: string;
  schemas?: string[];
  parallelism?: number;
}

export const RESTORE_USAGE = 'Usage: npm run restore -- <file.tgz | folder | s3://bucket/prefix/> --into <postgres://...> [--schemas a,b] [--parallel n]';

/** `npm run restore`'s arguments, or the one line that says what is wrong with them. */
export function parseRestoreArguments(argv: string[]): RestoreArguments | { error: string } {
  const positional: string[] = [];
  let into: string | undefined;
  let schemas: string[] | undefined;
  let parallelism: number | undefined;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    if (flag === '--into') into = value();
    else if (flag === '--schemas') schemas = value()?.split(',').map((s) => s.trim()).filter((s) => s !== '');
    else if (flag === '--parallel') parallelism = Number(value());
    else if (flag === '--help' || flag === '-h') return { error: RESTORE_USAGE };
    else if (flag.startsWith('-')) return { error: `Unknown option ${flag}. ${RESTORE_USAGE}` };
    else positional.push(arg);
  }
  if (positional.length !== 1) return { error: `Give one source (${positional.length === 0 ? 'none given' : `${positional.length} given`}). ${RESTORE_USAGE}` };
  if (!into) return { error: `--into is missing: the database to restore into. ${RESTORE_USAGE}` };
  if (!/^postgres(ql)?:\/\//.test(into)) return { error: `--into must be a postgres:// or postgresql:// URL, not ${JSON.stringify(into.replace(/:[^:@/]*@/, ':***@'))}` };
  if (schemas !== undefined && schemas.length === 0) return { error: `--schemas is empty. ${RESTORE_USAGE}` };
  if (parallelism !== undefined && (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > 32)) return { error: '--parallel must be a whole number from 1 to 32' };
  return { source: positional[0]!, into, schemas, parallelism };
}
