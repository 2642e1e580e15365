import { rmSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import process from 'node:process';

/**
 * serverless-esbuild (1.57) leaves two things behind after `sls invoke local` and `sls offline`:
 *
 * - its bundle folder (custom.esbuild.outputWorkFolder, one per run here): it removes that folder
 *   only after packaging, so each local run left 4-7 MB under .esbuild/. Removed here when the
 *   process exits, however the command ended.
 * - its incremental esbuild context, whose service process keeps Node alive: when the handler
 *   failed to load (an invalid setting at cold start), `sls invoke local` printed the error and
 *   never exited, because the hook that disposes the context runs only after a successful invoke.
 *   Disposed here as soon as the bundle is built: invoke local never rebuilds.
 */
export default class TidyLocalBundles {
  constructor(serverless) {
    // Read now: serverless-esbuild points serverless.serviceDir at its bundle folder for invoke local.
    const serviceDir = serverless.serviceDir;
    const esbuildPlugin = () => serverless.pluginManager.plugins.find((plugin) => plugin.constructor.name === 'EsbuildServerlessPlugin');
    const removeBundlesOnExit = () => {
      const folder = serverless.service.custom?.esbuild?.outputWorkFolder;
      if (typeof folder !== 'string') return;
      const workDir = join(serviceDir, folder);
      const inside = relative(join(serviceDir, '.esbuild'), workDir);
      // Only a folder of its own under .esbuild/, never .esbuild itself or anything outside it.
      if (!inside || inside.startsWith('..') || inside.includes(sep)) return;
      process.once('exit', () => rmSync(workDir, { recursive: true, force: true }));
    };
    this.hooks = {
      'before:invoke:local:invoke': async () => {
        removeBundlesOnExit();
        await esbuildPlugin()?.disposeContexts();
      },
      'before:offline:start': removeBundlesOnExit,
      'before:offline:start:init': removeBundlesOnExit,
    };
  }
}
