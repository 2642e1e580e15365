import net from 'node:net';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { CopyDataTap } from './copy-data-tap';

/**
 * How a connection uses TLS, from the connection string's `sslmode` (as libpq and postgres.js
 * name them): `disable`; `prefer` (and `allow`): TLS when the server offers it; `require`: TLS,
 * certificate not checked; `verify-ca` / `verify-full`: TLS with the certificate checked against
 * the trusted CAs (Node's, plus NODE_EXTRA_CA_CERTS) and the host name. `sslrootcert=system`
 * means `verify-full`, as in libpq 16. `sslnegotiation=direct` starts TLS at once (PostgreSQL 17).
 */
export interface TlsSettings {
  mode: 'disable' | 'prefer' | 'require' | 'verify-full';
  direct: boolean;
}

const MODES: Record<string, TlsSettings['mode']> = {
  disable: 'disable',
  false: 'disable',
  allow: 'prefer',
  prefer: 'prefer',
  require: 'require',
  true: 'require',
  'verify-ca': 'verify-full',
  'verify-full': 'verify-full',
};

/** Reads the TLS settings of a connection string; an unknown `sslmode` is an error that names it. */
export function readTlsSettings(url: string): TlsSettings {
  const query = new URL(url).searchParams;
  const given = query.get('sslmode') ?? query.get('ssl');
  let mode = given === null ? 'disable' : MODES[given];
  if (!mode) throw new Error(`Unknown sslmode ${JSON.stringify(given)} in the database connection string: use one of ${Object.keys(MODES).join(', ')}`);
  if (query.get('sslrootcert') === 'system') mode = 'verify-full';
  return { mode, direct: query.get('sslnegotiation') === 'direct' };
}

/** What postgres.js passes to its `socket` option (its parsed options; the fields used here). */
interface ConnectOptions {
  host: string[];
  port: number[];
  path?: string | false;
  connect_timeout?: number;
}

/** postgres.js's own 8-byte SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

/**
 * The `socket` option of the project's postgres.js clients: opens the connection (TCP, or a Unix
 * socket), does the TLS negotiation itself when the settings ask for it, and puts a CopyDataTap
 * between the socket and postgres.js. postgres.js is told `ssl: false`: it would otherwise wrap
 * the socket in a TLS socket of its own making, whose decrypted bytes nothing could tap.
 */
export function databaseSocketFactory(settings: TlsSettings): (options: ConnectOptions) => Promise<Socket> {
  return async (options) => {
    const host = options.host[0] ?? 'localhost';
    const port = options.port[0] ?? 5432;
    const timeoutMs = (options.connect_timeout ?? 30) * 1000;
    const target = options.path ? { path: options.path } : { host, port };
    try {
      let socket: Socket;
      if (settings.mode === 'disable') {
        // Without TLS the socket reads into one buffer of its own, over and over, instead of a
        // new 64 KiB buffer per read (a large table's whole size again in garbage); the tap
        // copies out what it hands on, as postgres.js may keep a view of it.
        const reading: { tap?: CopyDataTap } = {};
        socket = await connectPlain(target, timeoutMs, (bytes) => reading.tap?.receive(bytes));
        reading.tap = tapOf(socket, { copyHandedOn: true });
      } else {
        const plain = await connectPlain(target, timeoutMs);
        try {
          socket = await negotiateTls(plain, host, settings, timeoutMs);
        } catch (error) {
          plain.destroy();
          throw error;
        }
        const tap = tapOf(socket, { copyHandedOn: false });
        // Every 'data' event of the TLS socket goes through the tap.
        const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
        socket.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
          if (event !== 'data') return emit(event, ...args);
          tap.receive(args[0] as Buffer);
          return true;
        }) as typeof socket.emit;
      }
      // postgres.js names the server in its connection errors from these.
      Object.assign(socket, { host, port });
      return socket;
    } catch (error) {
      // postgres.js handles a failed connection through the socket's 'error' and 'close' events:
      // a rejected promise would fail the waiting query but leave the connection "connecting"
      // for ever, and every later query waiting on it. So the failure comes as those events, once
      // postgres.js has its listeners on (it adds them as soon as this promise resolves).
      const failed = new PassThrough() as unknown as Socket;
      Object.assign(failed, { host, port });
      setImmediate(() => failed.destroy(error as Error));
      return failed;
    }
  };
}

/** A tap that hands bytes on as the socket's 'data' events (postgres.js listens to those). */
function tapOf(socket: Socket, { copyHandedOn }: { copyHandedOn: boolean }): CopyDataTap {
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  return new CopyDataTap((bytes) => emit('data', copyHandedOn ? Buffer.from(bytes) : bytes), socket, socket);
}

/** Bytes read into the reused buffer of a socket without TLS. */
const READ_BUFFER_BYTES = 256 * 1024;

/** Connects; with `onBytes`, every read goes to it, in a buffer that is reused for the next read. */
function connectPlain(target: { path: string } | { host: string; port: number }, timeoutMs: number, onBytes?: (bytes: Buffer) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const onread = onBytes && {
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback(length: number, buffer: Buffer): boolean {
        onBytes(buffer.subarray(0, length));
        return true;
      },
    };
    const socket = net.connect({ ...target, ...(onread ? { onread } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`Timed out after ${timeoutMs / 1000} s connecting to the database at ${describe(target)}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve(socket);
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', onError);
  });
}

function describe(target: { path: string } | { host: string; port: number }): string {
  return 'path' in target ? target.path : `${target.host}:${target.port}`;
}

async function negotiateTls(socket: Socket, host: string, settings: TlsSettings, timeoutMs: number): Promise<Socket> {
  if (!settings.direct) {
    const answer = await askForTls(socket, timeoutMs);
    if (answer !== 'S') {
      if (settings.mode === 'prefer') return socket;
      throw new Error(`The database server at ${host} does not accept TLS connections, and sslmode=${settings.mode} asks for one`);
    }
  }
  // Loaded here, not at cold start: most functions of a local stack never use TLS.
  const tls = await import('node:tls');
  const secure = tls.connect({
    socket,
    servername: net.isIP(host) ? undefined : host,
    rejectUnauthorized: settings.mode === 'verify-full',
    ...(settings.direct ? { ALPNProtocols: ['postgresql'] } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error(`Timed out after ${timeoutMs / 1000} s in the TLS handshake with the database at ${host}`));
    }, timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.removeListener('error', onError);
      resolve();
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    secure.once('error', onError);
  });
  return secure;
}

/** Sends SSLRequest; the server answers one byte: 'S' (go ahead with TLS) or 'N'. */
function askForTls(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`Timed out after ${timeoutMs / 1000} s waiting for the database server's answer to the TLS request`)), timeoutMs);
    const finish = (error?: Error, answer?: string): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', finish);
      socket.removeListener('close', onClose);
      if (error) reject(error);
      else resolve(answer!);
    };
    const onData = (data: Buffer): void => {
      // Nothing else may follow the one byte (that would be a man in the middle, CVE-2021-23214).
      if (data.length !== 1) finish(new Error('The database server sent more than the one byte that answers the TLS request'));
      else finish(undefined, String.fromCharCode(data[0]!));
    };
    const onClose = (): void => finish(new Error('The database server closed the connection on the TLS request'));
    socket.on('data', onData);
    socket.once('error', finish);
    socket.once('close', onClose);
    socket.write(SSL_REQUEST);
  });
}
