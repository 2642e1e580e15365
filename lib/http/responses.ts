import type { APIGatewayProxyResult } from 'aws-lambda';
import { logger } from '../logger';
import { HttpError } from './http-error';

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8' };

export function jsonResponse(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

export function noContent(headers: Record<string, string> = {}): APIGatewayProxyResult {
  return { statusCode: 204, headers, body: '' };
}

/**
 * The one place errors become answers: an HttpError shows its own message; anything else is
 * logged in full and answered with a bare 500, so no stack trace or SQL ever reaches the caller.
 */
export function errorResponse(error: unknown): APIGatewayProxyResult {
  if (error instanceof HttpError) {
    return jsonResponse(error.statusCode, { error: error.message, ...error.details }, error.headers);
  }
  logger.error('Unexpected error while handling a request', { error: error as Error });
  return jsonResponse(500, { error: 'Internal error; the cause is in the function log' });
}
