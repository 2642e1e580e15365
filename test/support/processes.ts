import { readdirSync, readFileSync } from 'node:fs';

/**
 * The live processes whose environment holds `marker` (e.g. a unique folder passed in a variable):
 * every process a command started inherits its environment, so this finds what it left behind
 * whatever it is called and whoever its parent is now. Linux only (/proc).
 */
export function processesCarrying(marker: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // exited, waiting to be reaped
      if (!readFileSync(`/proc/${entry}/environ`, 'utf8').includes(marker)) continue;
      found.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** Waits until no live process carries `marker`, up to `ms`; returns those still there. */
export async function waitUntilNoneCarry(marker: string, ms: number): Promise<{ pid: number; command: string }[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = processesCarrying(marker);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
