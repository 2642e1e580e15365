/**
 * Runs one of scripts/' command-line tools as a single bundled ES module: `npm run restore` and
 * `npm run verify-export` start this way. The bundle (esbuild: our modules and their packages in
 * one file, the AWS SDK left to node_modules) is built into node_modules/.cache/ the first time
 * and again whenever one of its inputs has changed since; Node.js then loads it in under 0.1 s,
 * where tsx takes 0.4–0.5 s compiling and resolving each module.
 *
 * Plain JavaScript, so that Node.js runs it with nothing before it.
 *
 * Usage: node scripts/run-bundled.mjs <entry.ts> [arguments...]
 *        node scripts/run-bundled.mjs --build-only <entry.ts>   (build if stale; run nothing)
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'water-abstraction-jobs');
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The bundle's entry file, built first when it is missing or any of its inputs has changed since
 * its build began (an edit made while esbuild reads is caught next time). Each
 * build goes to a folder of its own (its entry and the chunks it imports lazily, such as the
 * S3 client), named by a small pointer file replaced in one rename: a run started meanwhile loads
 * the old build or the new one, never half of one. Builds replaced over a day ago are removed (a
 * run still going from one may yet load its lazy chunks).
 */
async function bundled(entry) {
  const name = basename(entry).replace(/\.ts$/, '');
  const pointer = join(CACHE, `${name}.json`);
  const current = readPointer(pointer);
  // Another entry of the same file name has the pointer: built again, as its own.
  if (current && current.source === entry && isFresh(current)) return current.entry;
  const { build } = await import('esbuild');
  mkdirSync(CACHE, { recursive: true });
  const startedAt = Date.now();
  const outdir = join(CACHE, `${name}-${Date.now()}-${process.pid}`);
  const result = await build({
    entryPoints: { [name]: entry },
    absWorkingDir: ROOT,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir,
    outExtension: { '.js': '.mjs' },
    metafile: true,
    external: ['@aws-sdk/*'],
    // Packages written as CommonJS call require(), which an ES module lacks.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  const inputs = Object.keys(result.metafile.inputs).map((input) => resolve(ROOT, input));
  const built = { source: entry, entry: join(outdir, `${name}.mjs`), inputs, startedAt };
  writeFileSync(`${pointer}.${process.pid}.tmp`, JSON.stringify(built));
  renameSync(`${pointer}.${process.pid}.tmp`, pointer);
  for (const old of readdirSync(CACHE)) {
    const path = join(CACHE, old);
    if (old.startsWith(`${name}-`) && path !== outdir && statSync(path).mtimeMs < Date.now() - DAY_MS) rmSync(path, { recursive: true, force: true });
  }
  return built.entry;
}

function readPointer(pointer) {
  try {
    return JSON.parse(readFileSync(pointer, 'utf8'));
  } catch {
    return undefined;
  }
}

function isFresh({ entry, inputs, startedAt }) {
  try {
    statSync(entry);
    return inputs.every((input) => statSync(input).mtimeMs < startedAt);
  } catch {
    return false;
  }
}

const [first, ...rest] = process.argv.slice(2);
const buildOnly = first === '--build-only';
const entry = buildOnly ? rest[0] : first;
if (!entry) {
  console.error('Usage: node scripts/run-bundled.mjs [--build-only] <entry.ts> [arguments...]');
  process.exit(2);
}
const outfile = await bundled(resolve(entry));
if (!buildOnly) {
  // As if Node.js had been started on the entry itself: its arguments from process.argv[2].
  process.argv = [process.argv[0], resolve(entry), ...rest];
  await import(pathToFileURL(outfile).href);
}
