import { randomUUID } from 'node:crypto';
import type { S3EventRecord } from 'aws-lambda';
import type S3rver from 's3rver';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { createLambdaClient } from '../../lib/clients/lambda';
import type { ObjectCreatedEvent } from '../../lib/verification/object-created-event';

/**
 * Locally, what S3 and EventBridge do in AWS for exportVerifier: s3rver emits an S3 event
 * notification for each object created; those for `<prefix>*.tgz` in the export bucket (the
 * pattern of ExportTarballUploadedRule in serverless.yml) are turned into the EventBridge
 * "Object Created" event AWS would send and delivered to the verifier.
 */
export interface UploadForwarding {
  /** Resolves when every event forwarded so far has been delivered (and, in-process, handled). */
  settled(): Promise<void>;
  /** The events forwarded so far. */
  readonly forwarded: ObjectCreatedEvent[];
}

export function forwardUploadsToVerifier(
  server: S3rver,
  { bucket, prefix, deliver }: { bucket: string; prefix: string; deliver: (event: ObjectCreatedEvent) => Promise<unknown> },
): UploadForwarding {
  const pending = new Set<Promise<unknown>>();
  const forwarded: ObjectCreatedEvent[] = [];
  server.on('event', ({ Records }) => {
    for (const record of Records) {
      const key = record.s3.object.key;
      if (!record.eventName.startsWith('ObjectCreated:') || record.s3.bucket.name !== bucket || !key.startsWith(prefix) || !key.endsWith('.tgz')) continue;
      const event = toObjectCreatedEvent(record);
      forwarded.push(event);
      const delivery = deliver(event).catch((error: unknown) => console.error(`Could not deliver the Object Created event of ${key} to exportVerifier:`, error));
      pending.add(delivery);
      void delivery.finally(() => pending.delete(delivery));
    }
  });
  return {
    forwarded,
    async settled() {
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}

/** The EventBridge event S3 sends for an object created, built from the S3 notification record of the same object. */
export function toObjectCreatedEvent(record: S3EventRecord): ObjectCreatedEvent {
  const { bucket, object } = record.s3;
  // s3rver names a completed multipart upload "ObjectCreated:Post"; S3's reason for it is CompleteMultipartUpload.
  const reason = record.eventName === 'ObjectCreated:Copy' ? 'CopyObject' : record.eventName === 'ObjectCreated:Put' ? 'PutObject' : 'CompleteMultipartUpload';
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '000000000000',
    time: record.eventTime.replace(/\.\d+Z$/, 'Z'),
    region: record.awsRegion,
    resources: [`arn:aws:s3:::${bucket.name}`],
    detail: {
      version: '0',
      bucket: { name: bucket.name },
      object: { key: object.key, size: object.size, etag: object.eTag, sequencer: object.sequencer },
      'request-id': record.responseElements['x-amz-request-id'],
      requester: '000000000000',
      reason,
    },
  };
}

/** Delivers each event to a function through a Lambda Invoke API (`sls offline`'s), asynchronously, as EventBridge does. */
export function invokeThroughLambdaApi(endpoint: string, functionName: string): (event: ObjectCreatedEvent) => Promise<unknown> {
  const lambda = createLambdaClient(endpoint);
  return (event) => lambda.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: JSON.stringify(event) }));
}
