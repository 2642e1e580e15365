import { describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, dashboardSize, serveDashboard } from '../../lib/dashboard/serve-dashboard';

describe('GET /jobs/dashboard', () => {
  it('serves the page with a strict CSP, nosniff and no referrer', () => {
    const answer = serveDashboard({ queryStringParameters: null });
    expect(answer.statusCode).toBe(200);
    expect(answer.headers).toMatchObject({
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': DASHBOARD_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    for (const directive of ["script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "default-src 'none'"]) {
      expect(DASHBOARD_CSP).toContain(directive);
    }
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });

  it('has no inline script or style in the page, only its own two files', () => {
    const { body } = serveDashboard({ queryStringParameters: null });
    expect(body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(body).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect([...body.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1])).toEqual(['dashboard?asset=dashboard.css', 'dashboard?asset=dashboard.js']);
  });

  it('serves its script and style sheet, and nothing else', () => {
    expect(serveDashboard({ queryStringParameters: { asset: 'dashboard.js' } })).toMatchObject({ statusCode: 200, headers: { 'Content-Type': 'text/javascript; charset=utf-8' } });
    expect(serveDashboard({ queryStringParameters: { asset: 'dashboard.css' } })).toMatchObject({ statusCode: 200, headers: { 'Content-Type': 'text/css; charset=utf-8' } });
    for (const query of [{ asset: '../serverless.yml' }, { asset: '' }, { asset: 'dashboard.js', x: '1' }, { other: '1' }]) {
      expect(serveDashboard({ queryStringParameters: query }).statusCode, JSON.stringify(query)).toBe(404);
    }
  });

  it('never writes markup from data: no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval in the script', () => {
    const { body } = serveDashboard({ queryStringParameters: { asset: 'dashboard.js' } });
    expect(body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|localStorage|document\.cookie/);
  });

  it('weighs under 150 KB, page and assets together', () => {
    expect(dashboardSize()).toBeLessThan(150 * 1024);
  });
});
