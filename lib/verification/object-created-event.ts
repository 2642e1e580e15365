import type { EventBridgeEvent } from 'aws-lambda';

/** The detail of S3's EventBridge "Object Created" event (keys are not URL-encoded, unlike S3 notifications). */
export interface ObjectCreatedDetail {
  version: string;
  bucket: { name: string };
  object: { key: string; size?: number; etag?: string; 'version-id'?: string; sequencer?: string };
  'request-id'?: string;
  requester?: string;
  reason?: string;
}

export type ObjectCreatedEvent = EventBridgeEvent<'Object Created', ObjectCreatedDetail>;

export interface CreatedObject {
  bucket: string;
  key: string;
  versionId?: string;
}

/** The object an "Object Created" event is about; throws, saying what is wrong, for anything else. */
export function parseObjectCreatedEvent(event: unknown): CreatedObject {
  const e = event as Partial<ObjectCreatedEvent> | null;
  if (e?.source !== 'aws.s3' || e['detail-type'] !== 'Object Created') {
    throw new Error(
      `Not an S3 "Object Created" event from EventBridge (source ${JSON.stringify(e?.source)}, detail-type ${JSON.stringify(e?.['detail-type'])})`,
    );
  }
  const bucket = e.detail?.bucket?.name;
  const key = e.detail?.object?.key;
  if (typeof bucket !== 'string' || !bucket || typeof key !== 'string' || !key) {
    throw new Error('The "Object Created" event has no detail.bucket.name or detail.object.key');
  }
  const versionId = e.detail?.object?.['version-id'];
  return { bucket, key, versionId: typeof versionId === 'string' && versionId ? versionId : undefined };
}
