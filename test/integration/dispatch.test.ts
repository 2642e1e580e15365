import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaDispatch, DispatchError } from '../../lib/jobs/dispatch';
import { createInlineDispatch } from '../../lib/jobs/inline-dispatch';
import { markFailureRecordedOnRun } from '../../lib/jobs/failure-recorded-on-run';

const event = { runId: '0b5f3a52-6f7e-4f53-9a55-3c3f4bfb1d0e' };

/** A Lambda client whose send answers with `answer` (or throws it), recording the commands. */
function fakeLambda(answer: () => unknown): LambdaClient & { commands: InvokeCommand[] } {
  const commands: InvokeCommand[] = [];
  // Only send is used by dispatch; the SDK client's many other members are not needed.
  return {
    commands,
    send: async (command: InvokeCommand) => {
      commands.push(command);
      return answer();
    },
  } as unknown as LambdaClient & { commands: InvokeCommand[] };
}

describe('inline dispatch', () => {
  const inline = (runInline: () => Promise<unknown>) => createInlineDispatch(runInline);

  it('hands over by running the worker and awaiting it', async () => {
    let ran = 0;
    await expect(inline(async () => (ran += 1))(event)).resolves.toBeUndefined();
    expect(ran).toBe(1);
  });

  it('counts a job that ran and failed (recorded on its run) as handed over', async () => {
    await expect(inline(async () => Promise.reject(markFailureRecordedOnRun(new Error('S3 down'))))(event)).resolves.toBeUndefined();
  });

  it('rejects when the worker failed before taking the run', async () => {
    await expect(inline(async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')))(event)).rejects.toThrow(
      new DispatchError('The inline worker did not take the run: connect ECONNREFUSED 127.0.0.1:5432'),
    );
  });
});

describe('lambda dispatch', () => {
  const settings = { mode: 'lambda', functionName: 'water-abstraction-jobs-dev-exportWorker' } as const;

  it('invokes the worker asynchronously with the run id, and accepts 202', async () => {
    const lambda = fakeLambda(() => ({ StatusCode: 202 }));
    await createLambdaDispatch(settings, lambda)(event);
    expect(lambda.commands).toHaveLength(1);
    const { input } = lambda.commands[0]!;
    expect(input).toMatchObject({ FunctionName: settings.functionName, InvocationType: 'Event' });
    expect(JSON.parse(Buffer.from(input.Payload as Uint8Array).toString('utf8'))).toEqual(event);
  });

  it('rejects a refused invoke and any status but 202', async () => {
    await expect(createLambdaDispatch(settings, fakeLambda(() => { throw new Error('Rate exceeded'); }))(event)).rejects.toThrow(
      new DispatchError(`Invoking ${settings.functionName} failed: Rate exceeded`),
    );
    await expect(createLambdaDispatch(settings, fakeLambda(() => ({ StatusCode: 200 })))(event)).rejects.toThrow(/answered 200, not 202/);
  });

  it('gives up on an invoke that never answers before the API function would time out (10 s)', async () => {
    const server = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await expect(createLambdaDispatch({ ...settings, endpoint })(event)).rejects.toThrow(/failed: .*requestTimeout/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }, 9_000);
});
