import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const projectRoot = resolve(import.meta.dirname, '../..');

export interface CloudFormationTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: unknown; Condition?: string }>;
  Outputs?: Record<string, unknown>;
  Parameters?: Record<string, unknown>;
  Conditions?: Record<string, unknown>;
}

/**
 * The CloudFormation template `sls package` produces for a stage, offline and with no AWS account.
 * Cached per content of serverless.yml, the resource files it includes (resources/*.yml) and the
 * given environment, so several test files share one
 * packaging run (it bundles every function and takes a while).
 */
export async function loadPackagedTemplate(stage = 'dev', env: Record<string, string> = {}): Promise<CloudFormationTemplate> {
  const hash = createHash('sha256').update(readFileSync(join(projectRoot, 'serverless.yml')));
  for (const file of readdirSync(join(projectRoot, 'resources')).sort()) hash.update(file).update(readFileSync(join(projectRoot, 'resources', file)));
  const key = hash
    .update(JSON.stringify({ stage, env }))
    .digest('hex')
    .slice(0, 16);
  const cacheDir = join(projectRoot, 'node_modules/.cache/packaged-templates');
  const cached = join(cacheDir, `${stage}-${key}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as CloudFormationTemplate;
  mkdirSync(cacheDir, { recursive: true });
  // Two packaging runs at once in one checkout race on its .serverless folder: take turns.
  return withPackagingLock(cacheDir, async () => {
    if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as CloudFormationTemplate;
    return packageTemplate(stage, env, cached);
  });
}

async function packageTemplate(stage: string, env: Record<string, string>, cached: string): Promise<CloudFormationTemplate> {
  const out = mkdtempSync(join(tmpdir(), 'waj-package-'));
  try {
    await run('npx', ['serverless', 'package', '--stage', stage, '--package', out], {
      cwd: projectRoot,
      // No AWS credentials and no region look-ups: packaging must work offline.
      env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '', SLS_TELEMETRY_DISABLED: '1', ...env },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 240_000,
    });
    const template = readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8');
    const partial = `${cached}.${process.pid}`;
    writeFileSync(partial, template);
    renameSync(partial, cached);
    return JSON.parse(template) as CloudFormationTemplate;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * Runs fn while holding a lock shared by every process of this checkout (a directory, created
 * atomically). A lock left by a process that no longer exists is taken over.
 */
async function withPackagingLock<T>(cacheDir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(cacheDir, '.packaging.lock');
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (lockHolderIsGone(lock)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`Waited too long for ${lock}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function lockHolderIsGone(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    return false; // just created; its pid is on the way
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** The resources of one CloudFormation type. */
export function resourcesOfType(template: CloudFormationTemplate, type: string) {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}
