/** Amounts as a person reads them in the local commands' lines (export:local, restore). */

/** Decimal units (kB = 1000 B), as `npm run export:local` has printed them. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function formatCount(count: number): string {
  return count.toLocaleString('en-GB');
}

export function formatSeconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `1 table`, `3 tables`. */
export function formatTables(count: number): string {
  return `${formatCount(count)} ${count === 1 ? 'table' : 'tables'}`;
}
