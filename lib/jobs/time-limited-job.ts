import type { TimeLimitedSettings } from '../config';
import { addTimeLimitedWorkflows } from '../time-limited/add-time-limited-workflows';
import type { Job } from './job';
import { timeLimitedRequest } from './time-limited-request';

export function createTimeLimitedJob(settings: TimeLimitedSettings): Job {
  return {
    ...timeLimitedRequest,
    run: (_params, { sql, signal }) => addTimeLimitedWorkflows(sql, settings, new Date(), signal),
    measure: (result) => ({ rows: (result as { count: number }).count }),
  };
}
