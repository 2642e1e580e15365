/**
 * Module loader hook (node:module register), used by offline-like-aws.js under `sls offline` only:
 * rewrites serverless-offline's lambda-proxy event so that a body whose JSON parses to a falsy
 * value (null, false, 0) reaches the function as the text that was sent, as API Gateway does.
 */
const TARGET = '/serverless-offline/src/events/http/lambda-events/LambdaProxyIntegrationEvent.js';
const ORIGINAL = 'let body = this.#request.payload\n';
const REPLACEMENT =
  'let body = this.#request.payload\n' +
  '    if (!body && typeof this.#request.rawPayload === "string" && this.#request.rawPayload !== "") body = this.#request.rawPayload\n';

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (!url.endsWith(TARGET)) return result;
  const source = String(result.source);
  if (!source.includes(ORIGINAL)) {
    throw new Error(`offline-raw-body-loader: ${TARGET} has changed (serverless-offline upgraded?); update plugins/offline-raw-body-loader.js`);
  }
  return { ...result, source: source.replace(ORIGINAL, REPLACEMENT) };
}
