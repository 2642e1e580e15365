import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the endpoint answered, for a test that looks at what the S3 client sent. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * An S3-protocol endpoint that answers a multipart upload (create, parts, complete, abort) and
 * throws the bytes away, as the `> /dev/null` of npm run bench:export's hand-run baselines does:
 * with it the export is measured without an S3 server's own work (s3rver hashes each part,
 * writes it, then reads and hashes it all again to join the parts: about 3-5 CPU seconds for a
 * 290 MB tarball) on the same cores; in AWS that work is S3's. `onRequest` is for unit tests of
 * the upload's requests: each is kept, body included, only when it is given. It stores nothing,
 * so it is no stand-in for S3 anywhere else.
 */
export async function startDiscardingS3({ onRequest }: { onRequest?: (request: ReceivedRequest) => void } = {}): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const [, bucket = '', ...keyParts] = url.pathname.split('/');
    const key = decodeURIComponent(keyParts.join('/'));
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => {
      if (onRequest) chunks.push(chunk);
    });
    request.on('end', () => {
      onRequest?.({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) });
      const xml = (body: string): void => {
        response.writeHead(200, { 'content-type': 'application/xml' });
        response.end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
      };
      if (request.method === 'POST' && url.searchParams.has('uploads')) {
        xml(`<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>${randomUUID()}</UploadId></InitiateMultipartUploadResult>`);
      } else if (request.method === 'PUT') {
        response.writeHead(200, { etag: `"${randomUUID().replaceAll('-', '')}"` });
        response.end();
      } else if (request.method === 'POST' && url.searchParams.has('uploadId')) {
        xml(`<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>"discarded"</ETag></CompleteMultipartUploadResult>`);
      } else if (request.method === 'DELETE') {
        response.writeHead(204);
        response.end();
      } else {
        response.writeHead(501);
        response.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
