import { describe, expectTypeOf, it } from 'vitest';
import type { RawConfig } from '../../src/config/index.js';
import type { SecurityChoice } from '../../src/rfb/index.js';

/**
 * The configuration's type is derived from CONFIG_SCHEMA (issue 16: one source of truth). These
 * are checked by `tsc` (npm test's typecheck): a schema change that loosens or breaks the derived
 * type fails the build.
 */
describe('RawConfig, derived from the schema', () => {
  it('has defaulted options present, with their types', () => {
    expectTypeOf<RawConfig['session']['idleTimeoutMs']>().toEqualTypeOf<number>();
    expectTypeOf<RawConfig['listen']>().toEqualTypeOf<string[]>();
    expectTypeOf<RawConfig['publicUrl']>().toEqualTypeOf<string | null>();
    expectTypeOf<RawConfig['tls']['plainHttp']>().toEqualTypeOf<boolean>();
    expectTypeOf<RawConfig['shutdown']['drainTimeoutMs']>().toEqualTypeOf<number>();
  });

  it('turns enums into unions of their values', () => {
    expectTypeOf<RawConfig['tls']['minVersion']>().toEqualTypeOf<'TLSv1.2' | 'TLSv1.3'>();
    expectTypeOf<RawConfig['session']['clientInit']>().toEqualTypeOf<'shared' | 'exclusive' | 'browser'>();
    expectTypeOf<RawConfig['log']['level']>().toEqualTypeOf<'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'>();
  });

  it('types profiles as records, with optional keys where the schema has no default', () => {
    type Profile = RawConfig['backends']['profiles'][string];
    expectTypeOf<Profile['security']>().toEqualTypeOf<SecurityChoice[]>();
    expectTypeOf<Profile['verifyHostname']>().toEqualTypeOf<boolean>();
    expectTypeOf<Profile>().toHaveProperty('passwordFile');
    expectTypeOf<Profile['passwordFile']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<RawConfig['ironic']['profilesByNode']>().toEqualTypeOf<Record<string, string>>();
  });
});
