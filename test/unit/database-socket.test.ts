import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseSocketFactory, readTlsSettings } from '../../lib/clients/database-socket';

describe('readTlsSettings', () => {
  it.each([
    ['', 'disable'],
    ['?sslmode=disable', 'disable'],
    ['?sslmode=allow', 'prefer'],
    ['?sslmode=prefer', 'prefer'],
    ['?sslmode=require', 'require'],
    ['?ssl=true', 'require'],
    ['?sslmode=verify-ca', 'verify-full'],
    ['?sslmode=verify-full', 'verify-full'],
    ['?sslmode=require&sslrootcert=system', 'verify-full'],
  ])('postgres://h/db%s gives %s', (query, mode) => {
    expect(readTlsSettings(`postgres://u@h:5432/db${query}`).mode).toBe(mode);
  });

  it('reads sslnegotiation=direct', () => {
    expect(readTlsSettings('postgres://h/db?sslmode=require&sslnegotiation=direct')).toEqual({ mode: 'require', direct: true });
  });

  it('refuses an sslmode it does not know, naming it', () => {
    expect(() => readTlsSettings('postgres://h/db?sslmode=sometimes')).toThrow(/Unknown sslmode "sometimes"/);
  });
});

/** A TCP server on loopback that does what `onConnection` says with each connection. */
async function fakeServer(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** What postgres.js sees: the socket the factory gives, then its 'error' (if any) once listeners are on. */
async function open(settings: ReturnType<typeof readTlsSettings>, port: number, connectTimeout = 2): Promise<{ socket: Socket; error?: Error }> {
  const socket = await databaseSocketFactory(settings)({ host: ['127.0.0.1'], port: [port], connect_timeout: connectTimeout });
  const error = await new Promise<Error | undefined>((resolve) => {
    socket.once('error', resolve);
    setTimeout(() => resolve(undefined), 50);
  });
  return { socket, error };
}

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

describe('databaseSocketFactory', () => {
  it('with TLS required and a server that answers N to the TLS request: the socket fails with a clear error, as events', async () => {
    const { server, port } = await fakeServer((socket) => socket.once('data', () => socket.write('N')));
    servers.push(server);
    const { error } = await open({ mode: 'require', direct: false }, port);
    expect(error?.message).toMatch(/does not accept TLS connections, and sslmode=require asks for one/);
  });

  it('with TLS preferred and a server that answers N: the plain connection goes on, and its bytes reach the data listeners', async () => {
    const { server, port } = await fakeServer((socket) => {
      socket.once('data', () => {
        socket.write('N');
        socket.once('data', () => socket.write(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))); // ReadyForQuery 'I'
      });
    });
    servers.push(server);
    const { socket, error } = await open({ mode: 'prefer', direct: false }, port);
    expect(error).toBeUndefined();
    const received = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write('startup');
    expect([...(await received)]).toEqual([0x5a, 0, 0, 0, 5, 0x49]);
    socket.destroy();
  });

  it('without TLS: bytes read go through the tap to the data listeners as copies of their own', async () => {
    const message = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
    const { server, port } = await fakeServer((socket) => socket.once('data', () => socket.write(Buffer.concat([message, message]))));
    servers.push(server);
    const { socket } = await open({ mode: 'disable', direct: false }, port);
    const chunks: Buffer[] = [];
    const got = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (Buffer.concat(chunks).length === 12) resolve();
      }),
    );
    socket.write('startup');
    await got;
    expect(Buffer.concat(chunks).equals(Buffer.concat([message, message]))).toBe(true);
    socket.destroy();
  });

  it('a refused connection fails as events, with the system error', async () => {
    const { server, port } = await fakeServer(() => {});
    await new Promise((resolve) => server.close(resolve));
    const { error } = await open({ mode: 'disable', direct: false }, port);
    expect(error?.message).toMatch(/ECONNREFUSED/);
  });

  it('a server that never answers the TLS request times out, naming the wait', async () => {
    const { server, port } = await fakeServer(() => {});
    servers.push(server);
    const started = Date.now();
    const socket = await databaseSocketFactory({ mode: 'require', direct: false })({ host: ['127.0.0.1'], port: [port], connect_timeout: 1 });
    const error = await new Promise<Error>((resolve) => socket.once('error', resolve));
    expect(error.message).toMatch(/Timed out after 1 s waiting for the database server's answer to the TLS request/);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
