import { describe, expect, it } from 'vitest';
import { isJobName, isListLimit, isRunStatus, isUuid } from '../../lib/runs/run';

describe('isUuid', () => {
  it.each(['3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b', '3F1C2A9E-8D4B-4E5F-9A6B-7C8D9E0F1A2B', '00000000-0000-0000-0000-000000000000'])(
    'accepts %s',
    (value) => expect(isUuid(value)).toBe(true),
  );

  it.each([
    '',
    'runs',
    '3f1c2a9e8d4b4e5f9a6b7c8d9e0f1a2b',
    '{3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b}',
    '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2',
    '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2bb',
    'gf1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b',
    ' 3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b',
    '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b\n',
  ])('refuses %j', (value) => expect(isUuid(value)).toBe(false));
});

describe('isJobName', () => {
  it('knows the two jobs and nothing else', () => {
    expect(isJobName('export')).toBe(true);
    expect(isJobName('time-limited')).toBe(true);
    for (const name of ['Export', 'time_limited', 'timeLimited', 'runs', '', 'export ']) expect(isJobName(name)).toBe(false);
  });
});

describe('isRunStatus', () => {
  it('knows the six statuses', () => {
    for (const status of ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped']) expect(isRunStatus(status)).toBe(true);
    for (const status of ['done', 'timed-out', 'FAILED', '']) expect(isRunStatus(status)).toBe(false);
  });
});

describe('isListLimit', () => {
  it('takes whole numbers from 1 to 100', () => {
    for (const limit of [1, 20, 100]) expect(isListLimit(limit)).toBe(true);
    for (const limit of [0, 101, -1, 2.5, Number.NaN, Infinity]) expect(isListLimit(limit)).toBe(false);
  });
});
