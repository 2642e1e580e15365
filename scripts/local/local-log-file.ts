import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Whether the JSON logs go to the terminal (LOG_FORMAT=json) rather than to the log file. */
export function logsToTerminal(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LOG_FORMAT?.trim().toLowerCase() === 'json';
}

/** A new log file under <stateDir>/logs, named for the command and the time it started. */
export function openLocalLogFile(stateDir: string, command: string): { path: string; write(chunk: string | Uint8Array): void } {
  const dir = join(stateDir, 'logs');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${command}-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  appendFileSync(path, '');
  return { path, write: (chunk) => appendFileSync(path, chunk) };
}

/**
 * Sends this process's JSON log lines (the Powertools logger writes each as one line on stdout or
 * stderr, starting with `{`) to `write`, and lets every other line through: the lines for people.
 */
export function divertJsonLines(write: (chunk: string | Uint8Array) => void): void {
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (text.startsWith('{')) {
        write(text);
        return true;
      }
      return original(chunk, ...rest);
    }) as typeof stream.write;
  }
}
