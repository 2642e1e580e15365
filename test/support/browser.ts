import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

/**
 * The browser the dashboard tests drive: Debian's `chromium` package (apt-get install -y chromium),
 * or CHROMIUM_PATH. playwright-core never downloads one.
 */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Whether the browser tests run. Without the browser they are skipped on a developer's machine
 * (with a warning) but fail in CI, whose .ci/run installs it: CI never passes without them.
 */
export function browserAvailable(): boolean {
  if (existsSync(chromiumPath)) return true;
  const why = `No browser at ${chromiumPath}: apt-get install -y chromium, or set CHROMIUM_PATH`;
  if (process.env.CI) throw new Error(why);
  console.warn(`${why}. The dashboard's browser tests are skipped.`);
  return false;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath });
}
