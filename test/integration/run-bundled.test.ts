/**
 * scripts/run-bundled.mjs, the way `npm run restore` and `npm run verify-export` start: a
 * TypeScript entry bundled once, run with its arguments, and rebuilt when an input changes.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CACHE = join('node_modules', '.cache', 'water-abstraction-jobs');

let folder: string;
let entry: string;
let helper: string;
const name = `run-bundled-probe-${process.pid}`;

async function launch(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/run-bundled.mjs', ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout: string; stderr: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const builtEntry = async (): Promise<string> => (JSON.parse(await readFile(join(CACHE, `${name}.json`), 'utf8')) as { entry: string }).entry;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'waj-run-bundled-'));
  entry = join(folder, `${name}.ts`);
  helper = join(folder, 'greeting.ts');
  await writeFile(helper, "export const greeting: string = 'hello';\n");
  await writeFile(
    entry,
    [
      "import { greeting } from './greeting';",
      'const args: string[] = process.argv.slice(2);',
      'console.log(`${greeting} ${args.join(",")} from ${process.argv[1]}`);',
      'process.exitCode = args.length;',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
  for (const file of await readdir(CACHE).catch(() => [])) {
    if (file.startsWith(name)) await rm(join(CACHE, file), { recursive: true, force: true });
  }
});

describe('scripts/run-bundled.mjs', () => {
  it('runs a TypeScript entry with its arguments, as Node.js would run the entry itself', async () => {
    const outcome = await launch(entry, 'a', 'b');
    expect(outcome).toEqual({ code: 2, stdout: `hello a,b from ${entry}\n`, stderr: '' });
  });

  it('builds once, and again only when one of the inputs has changed', async () => {
    await launch(entry);
    const first = await builtEntry();
    await launch(entry, 'again');
    expect(await builtEntry()).toBe(first);

    // An input the entry imports, changed (and dated after the build).
    await writeFile(helper, "export const greeting: string = 'goodbye';\n");
    const later = new Date(Date.now() + 5_000);
    await utimes(helper, later, later);
    const outcome = await launch(entry, 'x');
    expect(outcome.stdout).toBe(`goodbye x from ${entry}\n`);
    expect(await builtEntry()).not.toBe(first);
  });

  it('two entries of the same file name each run as themselves', async () => {
    const other = join(folder, 'other');
    await mkdir(other);
    const twin = join(other, `${name}.ts`);
    await writeFile(twin, "console.log('the twin');\n");
    expect((await launch(twin)).stdout).toBe('the twin\n');
    expect((await launch(entry, 'x')).stdout).toMatch(/^(hello|goodbye) x from /);
    expect((await launch(twin)).stdout).toBe('the twin\n');
  });

  it('--build-only builds and runs nothing; no entry is a usage error', async () => {
    expect(await launch('--build-only', entry)).toEqual({ code: 0, stdout: '', stderr: '' });
    const usage = await launch();
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('Usage: node scripts/run-bundled.mjs');
  });
});
