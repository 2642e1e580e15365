// An esbuild plugin for serverless-esbuild (custom.esbuild.plugins): an import of `<file>?raw` is
// that file's text, as Vite (and so vitest) reads the same import. The dashboard's page, script and
// style sheet are bundled into its function this way: nothing is read from disk or fetched at run time.
const { readFile } = require('node:fs/promises');
const path = require('node:path');

module.exports = [
  {
    name: 'raw-text',
    setup(build) {
      build.onResolve({ filter: /\?raw$/ }, (args) => ({
        path: path.resolve(args.resolveDir, args.path.slice(0, -'?raw'.length)),
        namespace: 'raw-text',
      }));
      build.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (args) => ({
        contents: await readFile(args.path, 'utf8'),
        loader: 'text',
        watchFiles: [args.path],
      }));
    },
  },
];
