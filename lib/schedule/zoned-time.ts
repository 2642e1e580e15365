/**
 * Wall-clock time in named IANA zones, with Intl doing the zone rules (no dependency on
 * process.env.TZ). Minute precision: schedules never need seconds.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

export interface WallTime {
  date: string; // YYYY-MM-DD
  hour: number;
  minute: number;
}

export function wallTimeIn(timeZone: string, at: Date): WallTime {
  const parts = partsFormatter(timeZone).formatToParts(at);
  const get = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  return { date: `${get('year')}-${get('month')}-${get('day')}`, hour: Number(get('hour')), minute: Number(get('minute')) };
}

/** Minutes the zone is ahead of UTC at that instant. */
function offsetMinutes(timeZone: string, at: Date): number {
  const wall = wallTimeIn(timeZone, at);
  const [y, m, d] = wall.date.split('-').map(Number) as [number, number, number];
  const asUtc = Date.UTC(y, m - 1, d, wall.hour, wall.minute);
  return Math.round((asUtc - Math.floor(at.getTime() / 60_000) * 60_000) / 60_000);
}

/**
 * The instant at which the wall clock in `timeZone` shows `date hour:minute`. When the clocks go
 * back and the time happens twice, the first; when they go forward and it never happens,
 * undefined (as EventBridge Scheduler skips such a run).
 */
export function instantOfWallTime(timeZone: string, date: string, hour: number, minute: number): Date | undefined {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const asUtc = Date.UTC(y, m - 1, d, hour, minute);
  const offsets = new Set(
    [-36, -12, 0, 12, 36].map((hours) => offsetMinutes(timeZone, new Date(asUtc + hours * 3_600_000))),
  );
  const matches = [...offsets]
    .map((offset) => new Date(asUtc - offset * 60_000))
    .filter((candidate) => {
      const wall = wallTimeIn(timeZone, candidate);
      return wall.date === date && wall.hour === hour && wall.minute === minute;
    })
    .sort((a, b) => a.getTime() - b.getTime());
  return matches[0];
}

/** 'HH:MM' and the zone's short name at that instant (e.g. '20:15', 'BST'). */
export function clockTimeIn(timeZone: string, at: Date): { time: string; zoneName: string } {
  const wall = wallTimeIn(timeZone, at);
  const zoneName =
    new Intl.DateTimeFormat('en-GB', { timeZone, timeZoneName: 'short' }).formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ??
    timeZone;
  return { time: `${String(wall.hour).padStart(2, '0')}:${String(wall.minute).padStart(2, '0')}`, zoneName };
}

/** Throws a RangeError naming the zone if Intl does not know it. */
export function assertTimeZone(timeZone: string): void {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
  } catch {
    throw new RangeError(`Unknown time zone: ${JSON.stringify(timeZone)} (use an IANA name such as Europe/London or UTC)`);
  }
}
