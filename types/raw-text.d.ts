/** `import text from './file?raw'`: the file's text (vitest natively; plugins/esbuild-raw-text.cjs when bundled). */
declare module '*?raw' {
  const text: string;
  export default text;
}
