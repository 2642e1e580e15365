import { register } from 'node:module';
import process from 'node:process';

/**
 * Makes `sls offline` behave as the deployed stack where serverless-offline 14 does not:
 *
 * - Schedules: serverless-offline fires every `schedule` event on its own, in the machine's time
 *   zone, against whatever DATABASE_URL points at (the time-limited job at 20:15 local time).
 *   Locally they fire only when OFFLINE_SCHEDULES=true.
 * - Request bodies: API Gateway hands a lambda-proxy function the body's text as sent; serverless-
 *   offline parses a JSON body and, when that gives null, false or 0, passes `body: null`, which
 *   the functions read as "no body" (a JSON `null` would start a full export instead of a 400).
 *   offline-raw-body-loader.js makes it pass the text.
 */
export default class OfflineLikeAws {
  constructor(serverless) {
    const isOffline = serverless.processedInput?.commands?.[0] === 'offline';
    // Before serverless-offline imports its HTTP server (at start), so the loader sees that import.
    if (isOffline) register('./offline-raw-body-loader.js', import.meta.url);

    const dropSchedulesUnlessAsked = () => {
      if (process.env.OFFLINE_SCHEDULES?.trim() === 'true') return;
      for (const name of serverless.service.getAllFunctions()) {
        const fn = serverless.service.getFunction(name);
        fn.events = (fn.events ?? []).filter((event) => !event.schedule);
      }
    };
    this.hooks = {
      // `sls offline` runs the `offline:start` hook; `sls offline start` runs `offline:start:init`.
      'before:offline:start': dropSchedulesUnlessAsked,
      'before:offline:start:init': dropSchedulesUnlessAsked,
    };
  }
}
