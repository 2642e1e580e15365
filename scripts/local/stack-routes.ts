/** The stack's functions and HTTP routes as the Serverless Framework resolves serverless.yml, and the lines `npm run local` prints for them. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface StackFunction {
  name: string;
  /** Its `http` events; none for a worker. */
  routes: StackRoute[];
}

export interface StackRoute {
  method: string;
  path: string;
  /** true: API Gateway wants the API key (`private: true`); false: a page for a browser (the dashboard). */
  keyed: boolean;
}

interface ResolvedConfig {
  functions?: Record<string, { events?: { http?: { method?: string; path?: string; private?: boolean } | string }[] }>;
}

/** Reads the functions from `sls print --format json` (the same resolution `sls offline` does). */
export async function readStackFunctions(projectRoot: string, env: NodeJS.ProcessEnv): Promise<StackFunction[]> {
  const child = spawn(process.execPath, [join(projectRoot, 'node_modules/serverless/bin/serverless.js'), 'print', '--format', 'json'], {
    cwd: projectRoot,
    env: { ...env, SLS_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`serverless print failed (${code}):\n${stderr || stdout}`);
  const config = JSON.parse(stdout.slice(stdout.indexOf('{'))) as ResolvedConfig;
  return Object.entries(config.functions ?? {}).map(([name, fn]) => ({
    name,
    routes: (fn.events ?? []).flatMap(({ http }) => {
      if (!http) return [];
      if (typeof http === 'string') {
        const [method = 'ANY', path = ''] = http.split(' ');
        return [{ method: method.toUpperCase(), path: `/${path.replace(/^\//, '')}`, keyed: false }];
      }
      return [{ method: (http.method ?? 'ANY').toUpperCase(), path: `/${(http.path ?? '').replace(/^\//, '')}`, keyed: http.private === true }];
    }),
  }));
}

/** Quotes a value for a POSIX shell line. */
export function sh(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The addresses of the routes that need no key: pages to open in a browser (the dashboard). */
export function pageAddresses(api: string, routes: StackRoute[]): string[] {
  return routes.filter((r) => !r.keyed && r.method === 'GET').map((r) => `${api}${r.path}`);
}

/**
 * One curl line per keyed route (the pages are for a browser: pageAddresses). A job route
 * (`/jobs/<job>`, ANY or POST) is shown as a POST, the export's also with a body; `{job}` expands
 * to each job that has such a route, `{id}` to "$RUN_ID".
 */
export function curlLines(api: string, key: string, routes: StackRoute[]): string[] {
  const header = `-H ${sh(`x-api-key: ${key}`)}`;
  const keyed = routes.filter((r) => r.keyed);
  const jobs = keyed.filter((r) => /^\/jobs\/[\w-]+$/.test(r.path) && ['ANY', 'POST'].includes(r.method)).map((r) => r.path.split('/')[2]!);
  const lines: string[] = [];
  for (const { method, path } of keyed) {
    const paths = path.includes('{job}') ? jobs.map((job) => path.replace('{job}', job)) : [path];
    for (const concrete of paths) {
      const url = `${api}${concrete.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'id' ? '$RUN_ID' : `<${name}>`))}`;
      const quoted = /[$<>]/.test(url) ? `"${url}"` : url;
      if (method === 'GET') {
        lines.push(`curl -s ${quoted} ${header}`);
        continue;
      }
      lines.push(`curl -i -X ${method === 'ANY' ? 'POST' : method} ${quoted} ${header}`);
      if (concrete === '/jobs/export') lines.push(`curl -i -X POST ${quoted} ${header} -H 'Content-Type: application/json' -d '{"schemas":["crm_v2"]}'`);
    }
  }
  return lines;
}
