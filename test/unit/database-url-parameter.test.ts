import { describe, expect, it } from 'vitest';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { readDatabaseUrlParameter } from '../../lib/clients/database';

/** An SSM client that answers every command with `answer` (or throws it). */
function fakeSsm(answer: () => unknown): Pick<SSMClient, 'send'> & { commands: unknown[] } {
  const commands: unknown[] = [];
  return {
    commands,
    // The SDK's send has many overloads; the fake only needs the one the code calls.
    send: (async (command: unknown) => {
      commands.push(command);
      return answer();
    }) as Pick<SSMClient, 'send'>['send'],
  };
}

describe('readDatabaseUrlParameter', () => {
  it('reads the decrypted value of the named parameter', async () => {
    const ssm = fakeSsm(() => ({ Parameter: { Value: 'postgres://db/water' } }));
    await expect(readDatabaseUrlParameter('/wrls/db', ssm)).resolves.toBe('postgres://db/water');
    expect(ssm.commands).toHaveLength(1);
    expect(ssm.commands[0]).toBeInstanceOf(GetParameterCommand);
    expect((ssm.commands[0] as GetParameterCommand).input).toEqual({ Name: '/wrls/db', WithDecryption: true });
  });

  it('names the parameter, the setting and the local fix when SSM cannot be read', async () => {
    const ssm = fakeSsm(() => {
      throw new Error('Could not load credentials from any providers');
    });
    await expect(readDatabaseUrlParameter('/wrls/db', ssm)).rejects.toThrow(
      'Could not read the database connection string from the SSM parameter /wrls/db (DATABASE_URL_PARAMETER): Could not load credentials from any providers. For local use, set DATABASE_URL instead.',
    );
  });

  it('refuses a parameter with no value', async () => {
    await expect(readDatabaseUrlParameter('/wrls/db', fakeSsm(() => ({ Parameter: {} })))).rejects.toThrow('The SSM parameter /wrls/db (DATABASE_URL_PARAMETER) has no value');
    await expect(readDatabaseUrlParameter('/wrls/db', fakeSsm(() => ({})))).rejects.toThrow(/has no value/);
  });
});
