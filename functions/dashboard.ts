import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { serveDashboard } from '../lib/dashboard/serve-dashboard';

/** GET /jobs/dashboard — the jobs dashboard page and its assets; no key, no data, no database. */
export const handler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => serveDashboard(event);
