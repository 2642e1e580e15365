import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import css from './assets/dashboard.css?raw';
import html from './assets/dashboard.html?raw';
import js from './assets/dashboard.js?raw';

/**
 * GET /jobs/dashboard: the dashboard page, and (`?asset=`) its script and style sheet. The one
 * route without the API key, so it serves only these fixed files, bundled into the function at
 * build, and no data: the page reads runs through the keyed routes with the key the person gives.
 */

/**
 * No inline script or style and no eval; requests to this origin only; not framed; and Trusted
 * Types, so the browser itself refuses any HTML sink (innerHTML and the like) the script might use.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

export const DASHBOARD_HEADERS = {
  'Content-Security-Policy': DASHBOARD_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  // Small files; always revalidated so a deployment shows at once.
  'Cache-Control': 'no-cache',
};

const FILES: Record<string, { body: string; type: string }> = {
  '': { body: html, type: 'text/html; charset=utf-8' },
  'dashboard.js': { body: js, type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { body: css, type: 'text/css; charset=utf-8' },
};

export type DashboardRequest = Pick<APIGatewayProxyEvent, 'queryStringParameters'>;

export function serveDashboard(event: DashboardRequest): APIGatewayProxyResult {
  const query = event.queryStringParameters ?? {};
  const names = Object.keys(query);
  const asset = names.length === 0 ? '' : names.length === 1 && names[0] === 'asset' ? (query.asset ?? '') : undefined;
  const file = asset === undefined ? undefined : FILES[asset];
  if (!file || (asset === '' && names.length > 0)) {
    return { statusCode: 404, headers: { ...DASHBOARD_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' }, body: 'Not found\n' };
  }
  return { statusCode: 200, headers: { ...DASHBOARD_HEADERS, 'Content-Type': file.type }, body: file.body };
}

/** The page and its assets together, in bytes: the issue asks for under 150 KB. */
export function dashboardSize(): number {
  return Object.values(FILES).reduce((total, file) => total + Buffer.byteLength(file.body), 0);
}
