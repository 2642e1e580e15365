import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import process from 'node:process';

/** Written into a run's bundle folder: the pid of the `sls` process that owns it. */
const OWNER_FILE = 'owner.pid';

/**
 * serverless-esbuild (1.57) leaves two things behind after `sls invoke local` and `sls offline`:
 *
 * - its bundle folder (custom.esbuild.outputWorkFolder, one per run here): it removes that folder
 *   only after packaging, so each local run left 4-7 MB under .esbuild/. Removed here when the
 *   process exits, however the command ended; a folder whose owner was killed before it could
 *   (SIGKILL, or a signal during bundling) is removed by the next local run.
 * - its incremental esbuild context, whose service process keeps Node alive: when the handler
 *   failed to load (an invalid setting at cold start), `sls invoke local` printed the error and
 *   never exited, because the hook that disposes the context runs only after a successful invoke.
 *   Disposed here as soon as the bundle is built: invoke local never rebuilds.
 */
export default class TidyLocalBundles {
  constructor(serverless) {
    // Read now: serverless-esbuild points serverless.serviceDir at its bundle folder for invoke local.
    const serviceDir = serverless.serviceDir;
    const bundlesDir = join(serviceDir, '.esbuild');
    const esbuildPlugin = () => serverless.pluginManager.plugins.find((plugin) => plugin.constructor.name === 'EsbuildServerlessPlugin');
    const [command, subcommand] = serverless.processedInput?.commands ?? [];
    const isLocalRun = command === 'offline' || (command === 'invoke' && subcommand === 'local');

    const claimBundleFolder = () => {
      const folder = serverless.service.custom?.esbuild?.outputWorkFolder;
      if (!isLocalRun || typeof folder !== 'string') return;
      const workDir = join(serviceDir, folder);
      const inside = relative(bundlesDir, workDir);
      // Only a folder of its own under .esbuild/, never .esbuild itself or anything outside it.
      if (!inside || inside.startsWith('..') || inside.includes(sep)) return;
      removeOrphanedBundleFolders(bundlesDir, workDir);
      mkdirSync(workDir, { recursive: true });
      writeFileSync(join(workDir, OWNER_FILE), String(process.pid));
      process.once('exit', () => rmSync(workDir, { recursive: true, force: true }));
    };
    this.hooks = {
      // After serverless-esbuild's own (it is listed first), before anything is bundled.
      initialize: claimBundleFolder,
      'before:invoke:local:invoke': async () => {
        await esbuildPlugin()?.disposeContexts();
      },
    };
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Bundle folders whose owning process is gone; a folder without an owner file is not ours to judge. */
function removeOrphanedBundleFolders(bundlesDir, keep) {
  let names = [];
  try {
    names = readdirSync(bundlesDir);
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(bundlesDir, name);
    if (dir === keep) continue;
    let owner;
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
    } catch {
      continue;
    }
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) rmSync(dir, { recursive: true, force: true });
  }
}
