import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { RequestedBy } from '../runs/run';

/** What of a request says who sent it. */
export type RequestIdentity = Partial<Pick<APIGatewayProxyEvent, 'requestContext' | 'headers'>>;

/**
 * Who sent a request, as API Gateway tells it: the API key's id, the source address and the user
 * agent. Never the key itself (requestContext.identity.apiKey carries its value): the ledger is
 * read by everyone who may read runs.
 */
export function requesterOf(event: RequestIdentity): RequestedBy {
  const identity = event.requestContext?.identity;
  const userAgentHeader = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'user-agent')?.[1];
  return {
    kind: 'http',
    apiKeyId: identity?.apiKeyId || null,
    sourceIp: identity?.sourceIp || null,
    userAgent: (identity?.userAgent || userAgentHeader || null)?.slice(0, 256) ?? null,
  };
}
