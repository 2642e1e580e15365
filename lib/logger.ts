import { Logger } from '@aws-lambda-powertools/logger';

/** The project's one logger: structured JSON lines, quiet (INFO) unless LOG_LEVEL says otherwise. */
export const logger = new Logger({
  serviceName: 'water-abstraction-jobs',
  logLevel: (process.env.LOG_LEVEL ?? 'INFO') as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT',
});
