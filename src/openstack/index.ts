/**
 * What Ironic and Nova both need from OpenStack: one bounded HTTP JSON client and a Keystone v3
 * session. Nothing here knows which service it serves except through its parameters, so the
 * resolvers above (ironic/, nova/) never import each other and every error names the service
 * actually called.
 */
export { abortableSleep, httpJson, isTransportFailure, retryDelayMs, parseJsonBody, type HttpOptions, type HttpResponse, type OpenStackService } from './http.js';
export { KeystoneSession, findEndpoint, isKeystoneTransient, type KeystoneCredentials, type KeystoneToken } from './keystone.js';
