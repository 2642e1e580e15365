import { describe, expect, it } from 'vitest';
import { HttpError } from '../../lib/http/http-error';
import { MAX_BODY_BYTES, readJsonBody } from '../../lib/http/read-json-body';

const json = { 'Content-Type': 'application/json' };

function statusOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof HttpError ? error.statusCode : -1;
  }
  return undefined;
}

describe('readJsonBody', () => {
  it('treats no body, an empty body and white space as no body, with or without a Content-Type', () => {
    expect(readJsonBody({ body: null, isBase64Encoded: false, headers: {} })).toBeUndefined();
    expect(readJsonBody({ body: '', isBase64Encoded: false, headers: {} })).toBeUndefined();
    expect(readJsonBody({ body: ' \n', isBase64Encoded: false, headers: { 'content-type': 'text/plain' } })).toBeUndefined();
  });

  it('parses a JSON object, whatever the case of the header and with a charset', () => {
    expect(readJsonBody({ body: '{"a":1}', isBase64Encoded: false, headers: { 'CONTENT-TYPE': 'Application/JSON; charset=utf-8' } })).toEqual({ a: 1 });
  });

  it('decodes base64 bodies', () => {
    const body = Buffer.from('{"schemas":["crm"]}').toString('base64');
    expect(readJsonBody({ body, isBase64Encoded: true, headers: json })).toEqual({ schemas: ['crm'] });
  });

  it.each(['%%%', 'e30', 'e30=x', 'eyJzY2hlbWFzIjpbImNybSJdfQ==!', 'ey Jz', 'e30-'])('answers 400 for the malformed base64 body %j', (body) => {
    expect(() => readJsonBody({ body, isBase64Encoded: true, headers: json })).toThrow(
      expect.objectContaining({ statusCode: 400, message: expect.stringMatching(/not valid base64/) }),
    );
  });

  it('answers 415 for a body that is not sent as JSON', () => {
    expect(statusOf(() => readJsonBody({ body: '{}', isBase64Encoded: false, headers: {} }))).toBe(415);
    expect(statusOf(() => readJsonBody({ body: '{}', isBase64Encoded: false, headers: { 'Content-Type': 'text/plain' } }))).toBe(415);
  });

  it.each(['{', 'null', '[]', '"text"', '42', 'true'])('answers 400 for %s', (body) => {
    expect(statusOf(() => readJsonBody({ body, isBase64Encoded: false, headers: json }))).toBe(400);
  });

  it('answers 413 above the limit and accepts a body at the limit', () => {
    const atLimit = `{"a":"${'x'.repeat(MAX_BODY_BYTES - 8)}"}`;
    expect(Buffer.byteLength(atLimit)).toBe(MAX_BODY_BYTES);
    expect(readJsonBody({ body: atLimit, isBase64Encoded: false, headers: json })).toBeDefined();
    const over = `{"a":"${'é'.repeat(MAX_BODY_BYTES / 2)}"}`;
    expect(statusOf(() => readJsonBody({ body: over, isBase64Encoded: false, headers: json }))).toBe(413);
    const overBase64 = Buffer.from(`{"a":"${'x'.repeat(MAX_BODY_BYTES)}"}`).toString('base64');
    expect(statusOf(() => readJsonBody({ body: overBase64, isBase64Encoded: true, headers: json }))).toBe(413);
  });

  it('checks the size before the Content-Type, so a huge body of any type is 413', () => {
    expect(statusOf(() => readJsonBody({ body: 'x'.repeat(MAX_BODY_BYTES + 1), isBase64Encoded: false, headers: {} }))).toBe(413);
  });
});
