import type { JobRequest } from './job-request';
import { rejectUnknownFields } from './job-params';

/** What timeLimitedApi needs of the time-limited job: its name; it takes no params. */
export const timeLimitedRequest: JobRequest = {
  name: 'time-limited',
  parseParams(input) {
    if (input !== undefined) rejectUnknownFields(input, []);
    return {};
  },
};
