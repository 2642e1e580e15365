/**
 * Test helper process: starts an embedded PostgreSQL on the data folder argv[2] (a throw-away
 * cluster, removed when stopped), prints `{"port":...}` and then, per argv[3]:
 * `exit` calls process.exit without stopping it, `throw` dies of an uncaught error, `hold` waits
 * (to be killed). What is left afterwards is the test's question.
 */
import { startEmbeddedPostgres } from '../../scripts/local/embedded-postgres';

const [dataDir, mode] = process.argv.slice(2);
const server = await startEmbeddedPostgres({ dataDir: dataDir!, durable: false, removeDataDirOnStop: true });
console.log(JSON.stringify({ port: server.port, pid: server.pid() }));
if (mode === 'exit') process.exit(0);
if (mode === 'throw') setTimeout(() => {
  throw new Error('the owner failed');
}, 10);
if (mode === 'hold') setInterval(() => {}, 1000);
