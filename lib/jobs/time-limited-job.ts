import type { TimeLimitedSettings } from '../config';
import { addTimeLimitedWorkflows } from '../time-limited/add-time-limited-workflows';
import type { Job } from './job';
import { rejectUnknownFields } from './job-params';

export function createTimeLimitedJob(settings: TimeLimitedSettings): Job {
  return {
    name: 'time-limited',
    parseParams(input) {
      if (input !== undefined) rejectUnknownFields(input, []);
      return {};
    },
    run: (_params, { sql }) => addTimeLimitedWorkflows(sql, settings),
    measure: (result) => ({ rows: (result as { count: number }).count }),
  };
}
