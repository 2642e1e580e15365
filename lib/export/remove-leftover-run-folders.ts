import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../logger';

/** Each export run stages its tables in a folder `<tmpRoot>/<RUN_FOLDER_PREFIX>XXXXXX` (mkdtemp). */
export const RUN_FOLDER_PREFIX = 'waj-export-';
const RUN_FOLDER_NAME = /^waj-export-[A-Za-z0-9]{6}$/;

/**
 * Removes the run folders that earlier runs left in `tmpRoot`. A run removes its own folder when
 * it ends, but not when Lambda stops it at its timeout; `/tmp` survives into the container's next
 * invocation (often the retry), which would then have less room for its own tables.
 *
 * Only for a place no other run can be using at the same time: in AWS a container runs one
 * invocation at a time, so at the start of one every run folder is a leftover. Never locally,
 * where runs in other processes share the machine's temp folder.
 */
export async function removeLeftoverRunFolders(tmpRoot: string): Promise<string[]> {
  const leftovers = (await readdir(tmpRoot, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && RUN_FOLDER_NAME.test(entry.name))
    .map((entry) => join(tmpRoot, entry.name));
  for (const folder of leftovers) await rm(folder, { recursive: true, force: true });
  if (leftovers.length > 0) logger.warn('Removed run folders left by an earlier export that did not finish', { folders: leftovers });
  return leftovers;
}
