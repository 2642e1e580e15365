import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ; 100 on Linux everywhere). */
const TICKS_PER_SECOND = 100;

interface ProcessTimes {
  parent: number;
  name: string;
  /** Its own CPU time and that of its children it has reaped, in ticks. */
  own: number;
  reaped: number;
}

function readProcess(pid: string): ProcessTimes | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone meanwhile
  }
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  // Fields after the name: state, ppid, ... utime (14th field), stime, cutime, cstime.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { parent: Number(fields[1]), name, own: Number(fields[11]) + Number(fields[12]), reaped: Number(fields[13]) + Number(fields[14]) };
}

/**
 * CPU seconds used so far by the PostgreSQL servers on this machine (Linux /proc): every live
 * `postgres` process, plus what each postmaster's reaped children (backends that have ended)
 * used. The difference of two readings is the servers' CPU in between, for backends that started
 * after the first reading (those of a measured run do). Used by npm run bench:export to show
 * where the machine's two cores went.
 */
export function postgresCpuSeconds(): number {
  const processes = new Map<number, ProcessTimes>();
  let pids: string[];
  try {
    pids = readdirSync('/proc');
  } catch {
    return Number.NaN; // no /proc (macOS): the figure is left out, not made up
  }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    const times = readProcess(pid);
    if (times?.name === 'postgres') processes.set(Number(pid), times);
  }
  let ticks = 0;
  for (const times of processes.values()) {
    ticks += times.own;
    // A postmaster (its parent is not a postgres process) has its ended backends' time.
    if (!processes.has(times.parent)) ticks += times.reaped;
  }
  return ticks / TICKS_PER_SECOND;
}
