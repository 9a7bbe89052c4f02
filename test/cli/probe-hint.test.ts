import { describe, expect, it } from 'vitest';
import { credentialsMissingHint, noCommonSecurityHint, type ProbeCredentials } from '../../src/cli/probe-hint.js';

/** Nothing given: the default preference, no password, no username. */
const bare: ProbeCredentials = { explicitSecurity: null, password: false, username: false, allowAnonymousTls: false };

describe('issue 16: probe hints name the missing credential, not --security', () => {
  it('a VncAuth endpoint probed without a password: pass --password-file', () => {
    expect(noCommonSecurityHint({ offeredTypes: ['VncAuth'] }, bare)).toBe('the endpoint asks for a VNC password: pass --password-file FILE');
  });

  it('a VeNCrypt X509Vnc endpoint: the same, since X509Vnc is in the default preference', () => {
    const details = { offeredTypes: ['VeNCrypt'], offeredSubtypes: ['X509Vnc'] };
    expect(noCommonSecurityHint(details, bare)).toBe('the endpoint asks for a VNC password: pass --password-file FILE');
  });

  it('X509Plain: --username and --password-file; only --username when the password was given', () => {
    const details = { offeredTypes: ['VeNCrypt'], offeredSubtypes: ['X509Plain'] };
    expect(noCommonSecurityHint(details, bare)).toBe('the endpoint asks for a username and password: pass --username USER --password-file FILE');
    expect(noCommonSecurityHint(details, { ...bare, password: true })).toBe('the endpoint asks for a username and password: pass --username USER');
  });

  it('types the default never picks are named with --security (and --allow-anonymous-tls)', () => {
    expect(noCommonSecurityHint({ offeredTypes: ['VeNCrypt'], offeredSubtypes: ['Plain'] }, bare)).toBe(
      'the endpoint asks for a username and password: pass --security vencrypt-plain --username USER --password-file FILE',
    );
    expect(noCommonSecurityHint({ offeredTypes: ['VeNCrypt'], offeredSubtypes: ['TLSVnc'] }, bare)).toBe(
      'the endpoint asks for a VNC password: pass --security vencrypt-tlsvnc --allow-anonymous-tls --password-file FILE',
    );
  });

  it('an explicit --security list that misses the offered type: the type and its credential', () => {
    expect(noCommonSecurityHint({ offeredTypes: ['VncAuth'] }, { ...bare, explicitSecurity: ['none'] })).toBe(
      'the endpoint asks for a VNC password: pass --security vncauth --password-file FILE',
    );
  });

  it('nothing vncgate speaks: no hint of its own (the generic one is used)', () => {
    expect(noCommonSecurityHint({ offeredTypes: ['RA2', 'unknown(99)'] }, bare)).toBeUndefined();
    expect(noCommonSecurityHint(undefined, bare)).toBeUndefined();
  });

  it('--security vncauth without a password (refused before connecting)', () => {
    expect(credentialsMissingHint({ ...bare, explicitSecurity: ['vncauth'] })).toBe('--security vncauth needs a VNC password: pass --password-file FILE');
    expect(credentialsMissingHint({ ...bare, explicitSecurity: ['none', 'vencrypt-x509plain'], password: true })).toBe(
      '--security vencrypt-x509plain needs a username and password: pass --username USER',
    );
  });
});
