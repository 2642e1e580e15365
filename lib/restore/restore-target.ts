import type { Sql } from 'postgres';
import { connectDatabase, readDatabaseUrlParameter } from '../clients/database';
import type { DatabaseSettings } from '../config';

/** The restore job's target database: its connection string (from SSM once per container) and a client on it. */
export interface RestoreTarget {
  url(): Promise<string>;
  /** A client of its own for one invocation: the caller ends it. */
  connect(max: number): Promise<Sql>;
}

export function createRestoreTarget(settings: DatabaseSettings): RestoreTarget {
  let cached: Promise<string> | undefined;
  const url = (): Promise<string> => {
    cached ??= settings.url
      ? Promise.resolve(settings.url)
      : readDatabaseUrlParameter(settings.urlParameter!, undefined, { parameter: 'RESTORE_DATABASE_URL_PARAMETER', url: 'RESTORE_DATABASE_URL' });
    // A failed read is not kept: the next invocation tries again.
    cached.catch(() => (cached = undefined));
    return cached;
  };
  return {
    url,
    async connect(max) {
      return connectDatabase(await url(), { max, connectTimeout: 10 });
    },
  };
}
