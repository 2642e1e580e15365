import type { APIGatewayProxyEvent } from 'aws-lambda';
import { HttpError } from './http-error';

/** Job requests carry at most a short list of names; anything near this is not one of ours. */
export const MAX_BODY_BYTES = 16 * 1024;

/** Standard base64 (RFC 4648 section 4), padded, as API Gateway encodes binary bodies. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type RequestBody = Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded' | 'headers'>;

function header(headers: RequestBody['headers'], name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

/**
 * Reads an optional JSON object body. No body (or only white space) gives `undefined`: schedulers
 * send bare POSTs. Otherwise: 413 over MAX_BODY_BYTES (checked before parsing), 415 unless the
 * Content-Type is JSON, 400 unless the body parses to a JSON object.
 */
export function readJsonBody(event: RequestBody): Record<string, unknown> | undefined {
  const raw = event.body;
  if (raw === null || raw === undefined) return undefined;
  if (typeof raw !== 'string') throw new HttpError(400, 'The request body must be text');
  // Size first, from the encoded length, so an oversized body is never decoded or parsed.
  const size = event.isBase64Encoded ? Math.floor((raw.length * 3) / 4) : Buffer.byteLength(raw, 'utf8');
  if (size > MAX_BODY_BYTES + 2) throw tooLarge();
  // Buffer.from(..., 'base64') skips characters that are not base64, so a mangled body could
  // decode to something else, or to nothing (and so to "no body": a full run). Check it first.
  if (event.isBase64Encoded && !BASE64.test(raw)) throw new HttpError(400, 'The request body is marked base64-encoded but is not valid base64');
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > MAX_BODY_BYTES) throw tooLarge();
  const text = bytes.toString('utf8');
  if (text.trim() === '') return undefined;

  const contentType = header(event.headers, 'content-type');
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new HttpError(415, `The request body must be sent as application/json (Content-Type was ${contentType ? JSON.stringify(contentType) : 'missing'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'The request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new HttpError(400, 'The request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function tooLarge(): HttpError {
  return new HttpError(413, `The request body is larger than ${MAX_BODY_BYTES} bytes`);
}
