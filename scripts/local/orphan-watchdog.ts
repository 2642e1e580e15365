/**
 * A small detached process that stops a server we started if this process dies without stopping
 * it: killed outright (SIGKILL, out of memory), or ended by a signal whose default action skips the
 * 'exit' hooks. Test runners do that to their workers, and the user's Ctrl-C never reaches a child
 * started in a process group of its own.
 */
import { spawn } from 'node:child_process';

export interface OrphanWatchdogOptions {
  /** The process (or, with group, the process group) to stop. */
  pid: number;
  group?: boolean;
  /** First signal; SIGKILL follows after graceMs if it is still there. */
  signal: NodeJS.Signals;
  graceMs?: number;
  /** A folder to remove once the process is gone (a throw-away database's data). */
  removeDir?: string;
}

export interface OrphanWatchdog {
  /** The work ended normally: the watchdog exits without doing anything. */
  release(): void;
}

// Plain JavaScript for `node -e`: polls the owner; when the owner is gone, stops the target.
const WATCHDOG = `
const [owner, target, group, signal, graceMs, removeDir] = process.argv.slice(1);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const id = group === 'group' ? -Number(target) : Number(target);
const send = (sig) => { try { process.kill(id, sig); } catch {} };
process.on('SIGTERM', () => process.exit(0));
const timer = setInterval(() => {
  if (alive(Number(owner))) { if (!alive(id)) process.exit(0); return; }
  clearInterval(timer);
  send(signal);
  const deadline = Date.now() + Number(graceMs);
  const wait = setInterval(() => {
    if (alive(id) && Date.now() < deadline) return;
    clearInterval(wait);
    if (alive(id)) send('SIGKILL');
    if (removeDir) setTimeout(() => require('node:fs').rmSync(removeDir, { recursive: true, force: true }), 200);
  }, 100);
}, 300);
`;

export function startOrphanWatchdog(options: OrphanWatchdogOptions): OrphanWatchdog {
  const { pid, group = false, signal, graceMs = 20_000, removeDir = '' } = options;
  const child = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), String(pid), group ? 'group' : 'pid', signal, String(graceMs), removeDir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return {
    release() {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    },
  };
}
