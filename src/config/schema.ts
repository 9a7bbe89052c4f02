import { PROFILE_SCHEMA } from './profile-schema.js';
import type { Infer } from './infer.js';

/** TLS 1.2 suites offered by default: ECDHE key exchange, AEAD ciphers (Mozilla "intermediate", without DHE). */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * The one configuration schema: every option, its type, bounds and default. README
 * "Configuration" documents the same options; a test keeps the two in step.
 * Units are in the names (…Ms, …Seconds, …Bytes); secrets are only ever read from *File paths.
 */
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** Addresses to listen on: "host:port" or "[v6]:port"; several for IPv4 and IPv6. */
    listen: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 3 },
      default: ['127.0.0.1:6080'],
    },
    /**
     * More addresses to listen on (same form as `listen`, never the same address) where every
     * connection must start with a PROXY protocol v1 or v2 header (HAProxy `send-proxy-v2`) and
     * come from `trustedProxies`; its header names the client. For a load balancer in TCP mode.
     */
    listenProxyProtocol: {
      type: 'array',
      maxItems: 16,
      items: { type: 'string', minLength: 3 },
      default: [],
    },
    /**
     * Load balancers and reverse proxies believed about the client's address: CIDRs or bare
     * addresses. Only connections from these may send a PROXY header (listenProxyProtocol), and
     * only their X-Forwarded-For/-Proto/-Host headers are read.
     */
    trustedProxies: { type: 'array', maxItems: 256, items: { type: 'string', minLength: 1 }, default: [] },
    /** Base of the console URLs handed out, e.g. "https://console.example.com:6080". */
    publicUrl: { type: ['string', 'null'], default: null },
    tls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        certFile: { type: ['string', 'null'], default: null },
        keyFile: { type: ['string', 'null'], default: null },
        minVersion: { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2' },
        /**
         * OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are all AEAD with forward secrecy).
         * Default: ECDHE key exchange with AEAD ciphers only, as Mozilla's "intermediate" profile
         * (without its DHE suites). null keeps Node's default list, which has non-forward-secret suites.
         */
        ciphers: { type: ['string', 'null'], default: TLS12_CIPHERS },
        /** Serve plain HTTP/WS (only behind a TLS-terminating proxy). Must be set explicitly. */
        plainHttp: { type: 'boolean', default: false },
        /**
         * Watch the directories of certFile and keyFile and serve a changed pair to new handshakes
         * (as SIGHUP does). Off: only SIGHUP reloads.
         */
        watchFiles: { type: 'boolean', default: true },
      },
    },
    redis: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** redis://[:password@]host:port/db or rediss://…; null = in-memory tokens (single process). */
        url: { type: ['string', 'null'], default: null },
        /** Redis Sentinels ("host:port") that know the primary `sentinelName`; instead of url. */
        sentinels: { type: 'array', items: { type: 'string' }, maxItems: 32, default: [] },
        /** The primary's name in the Sentinel configuration (`sentinel monitor <name> …`). */
        sentinelName: { type: 'string', minLength: 1, maxLength: 256, default: 'mymaster' },
        /** Password of the Sentinels themselves (their `requirepass`), first line of the file. */
        sentinelPasswordFile: { type: ['string', 'null'], default: null },
        /** Seed nodes ("host:port") of a Redis Cluster; instead of url. */
        cluster: { type: 'array', items: { type: 'string' }, maxItems: 32, default: [] },
        /** ACL user of the data nodes with sentinels or cluster (a url carries its own). */
        username: { type: ['string', 'null'], default: null },
        /** Password of the data nodes with sentinels or cluster, first line of the file. */
        passwordFile: { type: ['string', 'null'], default: null },
        /** Replicas a consume must reach (WAIT) before it counts; null = 1 with sentinels or cluster, 0 with url. */
        waitReplicas: { type: ['integer', 'null'], minimum: 0, maximum: 16, default: null },
        /** Longest WAIT for those replicas; less than half of commandTimeoutMs. */
        waitTimeoutMs: { type: 'integer', minimum: 1, maximum: 30_000, default: 200 },
        keyPrefix: { type: 'string', default: 'vncgate:' },
        connectTimeoutMs: { type: 'integer', minimum: 1, maximum: 60_000, default: 2_000 },
        commandTimeoutMs: { type: 'integer', minimum: 1, maximum: 60_000, default: 1_000 },
      },
    },
    tokens: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        defaultTtlSeconds: { type: 'integer', minimum: 1, maximum: 86_400, default: 300 },
        maxTtlSeconds: { type: 'integer', minimum: 1, maximum: 86_400, default: 86_400 },
      },
    },
    api: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** JWT bearer verification for POST /v1/console-tokens; the API is off until one key source is set. */
        jwt: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            hs256SecretFile: { type: ['string', 'null'], default: null },
            jwksFile: { type: ['string', 'null'], default: null },
            jwksUrl: { type: ['string', 'null'], default: null },
            issuer: { type: ['string', 'null'], default: null },
            audience: { type: ['string', 'null'], default: null },
            clockToleranceSeconds: { type: 'integer', minimum: 0, maximum: 300, default: 30 },
            /** Longest lifetime a bearer JWT may claim (exp − iat, or exp − now without iat). */
            maxLifetimeSeconds: { type: 'integer', minimum: 60, maximum: 604_800, default: 3_600 },
          },
        },
        /** GET /v1/screenshots and GET /v1/console-checks (same JWT as the token API). */
        screenshots: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            /** Deadline for one screenshot or check: node lookup, connect, handshake, frame, PNG. */
            timeoutMs: { type: 'integer', minimum: 1_000, maximum: 300_000, default: 20_000 },
            /** Screenshots and checks under way in this process; more are refused (SESSION_ERR_CAPACITY). */
            maxConcurrent: { type: 'integer', minimum: 1, maximum: 256, default: 4 },
            /** Largest framebuffer decoded (each costs about 3 bytes a pixel, twice over while compressing). */
            maxWidth: { type: 'integer', minimum: 16, maximum: 16_384, default: 8_192 },
            maxHeight: { type: 'integer', minimum: 16, maximum: 16_384, default: 8_192 },
          },
        },
      },
    },
    origins: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Check the WebSocket Origin header (the request's own scheme://host is always allowed). */
        check: { type: 'boolean', default: true },
        /** More allowed origins, exactly as browsers send them: "https://horizon.example.com". */
        allowed: { type: 'array', items: { type: 'string' }, default: [] },
        /** Refuse WebSocket requests without an Origin header (non-browser clients send none). */
        requireOrigin: { type: 'boolean', default: false },
        /**
         * Deprecated: trust X-Forwarded-For/-Proto/-Host from ANY address (as before trustedProxies
         * existed). Name the proxies in trustedProxies instead; the two cannot be combined.
         */
        trustForwardedHeaders: { type: 'boolean', default: false },
      },
    },
    console: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** CSP frame-ancestors sources allowed to embed the console page (Horizon's origin). */
        frameAncestors: { type: 'array', items: { type: 'string' }, default: ["'self'"] },
      },
    },
    session: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        connectTimeoutMs: { type: 'integer', minimum: 100, maximum: 300_000, default: 10_000 },
        /** From the WebSocket upgrade to ServerInit: both handshakes and the initialisation. */
        handshakeTimeoutMs: { type: 'integer', minimum: 100, maximum: 300_000, default: 15_000 },
        /** Close a session with no traffic either way for this long; 0 = never. */
        idleTimeoutMs: { type: 'integer', minimum: 0, maximum: 604_800_000, default: 3_600_000 },
        /** Close any session after this long; 0 = never. */
        maxLifetimeMs: { type: 'integer', minimum: 0, maximum: 604_800_000, default: 0 },
        /** WebSocket ping interval; a browser that misses a pong is disconnected. 0 = off. */
        heartbeatIntervalMs: { type: 'integer', minimum: 0, maximum: 3_600_000, default: 30_000 },
        /** Per-direction buffer above which the sender is paused (backpressure). */
        highWaterMarkBytes: { type: 'integer', minimum: 16_384, maximum: 67_108_864, default: 1_048_576 },
        /** Largest WebSocket message accepted from a browser. */
        maxMessageBytes: { type: 'integer', minimum: 1024, maximum: 67_108_864, default: 4_194_304 },
        /** Concurrent sessions in this process; more are refused with a reason. */
        maxSessions: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 20_000 },
        /**
         * The ClientInit sent to the console endpoint: vncgate's own, shared or exclusive, sent the
         * moment the endpoint accepts authentication (one round trip sooner); or the browser's own.
         */
        clientInit: { type: 'string', enum: ['shared', 'exclusive', 'browser'], default: 'shared' },
        /** Bytes queued toward one viewer of a shared console above which that viewer is ended (SESSION_ERR_SHARED_SLOW). */
        sharedViewerQueueBytes: { type: 'integer', minimum: 65_536, maximum: 268_435_456, default: 16_777_216 },
      },
    },
    /** Connection and abuse limits, on by default (the front end faces the internet). */
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Open client connections (TLS, HTTP, WebSocket) in this process; more are closed at once. */
        maxConnections: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 20_000 },
        /** Open client connections from one client address; more are closed at once. 0 = no cap. */
        maxConnectionsPerClient: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 256 },
        /** From TCP accept to a completed TLS handshake. */
        tlsHandshakeTimeoutMs: { type: 'integer', minimum: 100, maximum: 120_000, default: 10_000 },
        /** From accept (or the end of the previous response) to a complete request, upgrades included. */
        requestTimeoutMs: { type: 'integer', minimum: 100, maximum: 300_000, default: 30_000 },
        /**
         * TCP keepalive on client connections: the kernel probes a peer that has been silent this
         * long, so a browser that vanished (power, network) is noticed even while its WebSocket is
         * paused by backpressure and the heartbeat is off. 0 = off.
         */
        tcpKeepaliveMs: { type: 'integer', minimum: 0, maximum: 7_200_000, default: 30_000 },
        /** Idle time allowed on a kept-alive plain HTTP connection between requests. */
        keepAliveTimeoutMs: { type: 'integer', minimum: 100, maximum: 300_000, default: 5_000 },
        /** Concurrent sessions per console endpoint and per Ironic node / Nova instance, across replicas (Redis). 0 = unlimited. */
        sessionsPerTarget: { type: 'integer', minimum: 0, maximum: 1_000, default: 0 },
        /** Invalid console links per client address per minute before that address is refused for a cool-down. 0 = unlimited. */
        invalidTokensPerMinute: { type: 'integer', minimum: 0, maximum: 100_000, default: 30 },
        /** How long an address over invalidTokensPerMinute is refused. */
        invalidTokenCooldownSeconds: { type: 'integer', minimum: 1, maximum: 86_400, default: 60 },
        /** Lifetime of a session lease (renewed while the session lives); what a crashed replica can leak for. */
        leaseTtlSeconds: { type: 'integer', minimum: 2, maximum: 300, default: 15 },
      },
    },
    /** Reconnect grants (issue 18): vncgate's console page reopens a dropped console without a new link. */
    reconnect: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        /** How long after a non-policy drop the grant can be used. */
        graceSeconds: { type: 'integer', minimum: 5, maximum: 600, default: 60 },
        /** Reconnects one console link may have; the session past them gets no grant. */
        maxReconnects: { type: 'integer', minimum: 1, maximum: 1_000, default: 10 },
        /** What a grant is bound to besides the page's key: the client address too, or the key only (clients whose address changes). */
        bindTo: { type: 'string', enum: ['address', 'key'], default: 'address' },
      },
    },
    health: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /**
         * Whether GET /readyz answers 503 while the token store does not answer. Off: a store
         * shared by every replica would take them all out of the load balancer at once.
         */
        readinessChecksTokenStore: { type: 'boolean', default: false },
      },
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /**
         * On SIGTERM, how long established sessions keep working before they are closed; counted
         * from the end of readinessGraceMs.
         */
        drainTimeoutMs: { type: 'integer', minimum: 0, maximum: 86_400_000, default: 30_000 },
        /**
         * On SIGTERM, how long /readyz answers 503 while new consoles and tokens are still accepted,
         * before the drain begins: the time a load balancer without a preStop hook takes to notice.
         */
        readinessGraceMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 0 },
      },
    },
    backends: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /**
         * Where static targets (host:port tokens) may point: "CIDR", "CIDR:port", "CIDR:lo-hi",
         * "[v6 CIDR]:port", "[v6 CIDR]:lo-hi"; a bare address is a /32 or /128. Checked when a token
         * is issued and again at connect time after DNS resolution (src/target-policy.ts).
         * Loopback, link-local, unspecified, multicast and reserved addresses are refused unless an
         * entry names them explicitly (a CIDR inside those ranges). Ironic and Nova endpoints, which
         * come from the control plane, are not subject to it.
         */
        allowedTargets: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['0.0.0.0/0', '::/0'] },
        /** Profile used by targets that name none. */
        defaultProfile: { type: 'string', default: 'none' },
        /** Named backend security profiles. "none" (security None) always exists unless redefined. */
        profiles: { type: 'object', default: {}, additionalProperties: PROFILE_SCHEMA },
      },
    },
    /** Keystone v3 credentials shared by the Ironic and Nova clients (auth: keystone). */
    keystone: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        authUrl: { type: ['string', 'null'], default: null },
        username: { type: ['string', 'null'], default: null },
        passwordFile: { type: ['string', 'null'], default: null },
        userDomainName: { type: 'string', default: 'Default' },
        projectName: { type: ['string', 'null'], default: null },
        projectDomainName: { type: 'string', default: 'Default' },
        applicationCredentialId: { type: ['string', 'null'], default: null },
        applicationCredentialSecretFile: { type: ['string', 'null'], default: null },
        interface: { enum: ['public', 'internal', 'admin'], default: 'internal' },
        region: { type: ['string', 'null'], default: null },
      },
    },
    /** OpenStack Ironic: `{node}` targets and Ironic's own console URLs (drop-in for ironic-novncproxy). */
    ironic: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** API root, e.g. http://ironic.example.com:6385; with keystone, overrides the catalog. */
        url: { type: ['string', 'null'], default: null },
        auth: { enum: ['none', 'http_basic', 'keystone'], default: 'none' },
        /** Catalog service type when the URL comes from Keystone. */
        serviceType: { type: 'string', default: 'baremetal' },
        /** http_basic credentials (Ironic's [DEFAULT] auth_strategy = http_basic). */
        username: { type: ['string', 'null'], default: null },
        passwordFile: { type: ['string', 'null'], default: null },
        /** PEM bundle for the Ironic API's (and Keystone's) TLS; the system store when null. */
        caFile: { type: ['string', 'null'], default: null },
        timeoutMs: { type: 'integer', minimum: 100, maximum: 120_000, default: 10_000 },
        /** Extra attempts for GETs after a transport error, a timeout or a 5xx. */
        retries: { type: 'integer', minimum: 0, maximum: 5, default: 2 },
        /** Enable a disabled console when a vncgate `{node}` token is used. */
        autoEnableConsole: { type: 'boolean', default: false },
        enableTimeoutMs: { type: 'integer', minimum: 1_000, maximum: 600_000, default: 60_000 },
        /** Backend profile for node consoles: by node (UUID or name), console interface, driver, else default. */
        defaultProfile: { type: 'string', default: 'none' },
        profilesByNode: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
        profilesByConsoleInterface: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
        profilesByDriver: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
        /** Accept Ironic's own console URLs (websockify?node=…&token=…). */
        acceptIronicUrls: { type: 'boolean', default: true },
        /** Ironic tokens: reusable until Ironic expires them (as upstream), single-use, or one live session per node. */
        ironicTokenReuse: { enum: ['reusable', 'single-use', 'one-session'], default: 'reusable' },
        /** How long a single-use Ironic token stays marked used ([vnc] token_timeout). */
        ironicTokenTtlSeconds: { type: 'integer', minimum: 60, maximum: 604_800, default: 600 },
      },
    },
    /** OpenStack Nova: serve Nova's console URLs (drop-in for nova-novncproxy). */
    nova: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Serve Nova's URLs; implied by url or dbUrls. Needed alone for a catalog-only setup. */
        enabled: { type: 'boolean', default: false },
        /** How tokens are looked up: Nova's REST API, or the cell databases directly; auto = db when dbUrls are set. */
        resolver: { enum: ['auto', 'api', 'db'], default: 'auto' },
        /** Compute API root (…/v2.1); with keystone auth, the catalog's when null. */
        url: { type: ['string', 'null'], default: null },
        auth: { enum: ['keystone', 'noauth'], default: 'keystone' },
        serviceType: { type: 'string', default: 'compute' },
        /** Cell databases: mysql://… (MySQL/MariaDB) or postgres://… URLs. */
        dbUrls: { type: 'array', items: { type: 'string' }, default: [] },
        /** The same, one URL per line, from a file (the URLs carry passwords). */
        dbUrlsFile: { type: ['string', 'null'], default: null },
        caFile: { type: ['string', 'null'], default: null },
        timeoutMs: { type: 'integer', minimum: 100, maximum: 120_000, default: 10_000 },
        retries: { type: 'integer', minimum: 0, maximum: 5, default: 2 },
        /** Nova tokens: reusable until they expire (as upstream), single-use, or one live session per instance. */
        tokenReuse: { enum: ['reusable', 'single-use', 'one-session'], default: 'reusable' },
        /** Close sessions when the token expires ([consoleauth] enforce_session_timeout). DB resolver only. */
        enforceSessionTimeout: { type: 'boolean', default: false },
        /** Backend profile toward the compute host's VNC server ([vnc] auth_schemes, vencrypt_* files). */
        profile: { type: 'string', default: 'none' },
        /** Accept the token in a `token` cookie when the URL has none (noVNC 0.x pages). */
        acceptCookie: { type: 'boolean', default: true },
      },
    },
    /** Prometheus metrics on a listener of their own; off unless `listen` is set. */
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** "host:port" for GET /metrics (plain HTTP; keep it on loopback or a private network); null = off. */
        listen: { type: ['string', 'null'], minLength: 3, default: null },
      },
    },
    /** Audit events, one JSON line each, on a stream of their own (never the log). */
    audit: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** A file path (appended; reopened on SIGHUP), "-" for standard output; null = off. */
        file: { type: ['string', 'null'], minLength: 1, default: null },
        /** Put the client's address into token.refused and session events. */
        includeClientAddress: { type: 'boolean', default: true },
      },
    },
    /** Session recordings (README "Recordings"): on for a profile's `record` or a token's `record`. */
    recordings: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Directory of the recording files (created 0700); null = recording off (a token asking for one is refused). */
        dir: { type: ['string', 'null'], minLength: 1, default: null },
        /** Recordings older than this are deleted. */
        maxAgeHours: { type: 'integer', minimum: 1, maximum: 87_600, default: 720 },
        /** One recording stops (marked truncated) at this size. */
        maxBytesPerRecording: { type: 'integer', minimum: 65_536, default: 1_073_741_824 },
        /** The oldest recordings are deleted while the directory holds more than this. */
        maxTotalBytes: { type: 'integer', minimum: 65_536, default: 21_474_836_480 },
        /** Bytes of one recording waiting for the disk at most; past it the recording stops (truncated), never the session. */
        queueBytes: { type: 'integer', minimum: 65_536, maximum: 1_073_741_824, default: 8_388_608 },
        /** A recording whose last write has not completed this long after its session ended is reported stalled. */
        closeTimeoutMs: { type: 'integer', minimum: 100, maximum: 600_000, default: 30_000 },
        /** How often age and size limits are applied (also at start-up and whenever a recording starts). */
        pruneIntervalSeconds: { type: 'integer', minimum: 10, maximum: 86_400, default: 3_600 },
        /** Lifetime of a playback link minted by POST /v1/recordings/{id}/playback (single use). */
        playbackLinkTtlSeconds: { type: 'integer', minimum: 10, maximum: 3_600, default: 300 },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info' },
      },
    },
  },
} as const;

/** Environment variables, each overriding one option; only src/config reads process.env. */
export const ENV_OVERRIDES = {
  VNCGATE_LISTEN: { path: ['listen'], parse: 'list' },
  VNCGATE_LISTEN_PROXY_PROTOCOL: { path: ['listenProxyProtocol'], parse: 'list' },
  VNCGATE_TRUSTED_PROXIES: { path: ['trustedProxies'], parse: 'list' },
  VNCGATE_PUBLIC_URL: { path: ['publicUrl'], parse: 'string' },
  VNCGATE_TLS_CERT_FILE: { path: ['tls', 'certFile'], parse: 'string' },
  VNCGATE_TLS_KEY_FILE: { path: ['tls', 'keyFile'], parse: 'string' },
  VNCGATE_TLS_MIN_VERSION: { path: ['tls', 'minVersion'], parse: 'string' },
  VNCGATE_PLAIN_HTTP: { path: ['tls', 'plainHttp'], parse: 'boolean' },
  VNCGATE_TLS_WATCH_FILES: { path: ['tls', 'watchFiles'], parse: 'boolean' },
  VNCGATE_REDIS_URL: { path: ['redis', 'url'], parse: 'string' },
  VNCGATE_REDIS_SENTINELS: { path: ['redis', 'sentinels'], parse: 'list' },
  VNCGATE_REDIS_SENTINEL_NAME: { path: ['redis', 'sentinelName'], parse: 'string' },
  VNCGATE_REDIS_SENTINEL_PASSWORD_FILE: { path: ['redis', 'sentinelPasswordFile'], parse: 'string' },
  VNCGATE_REDIS_CLUSTER: { path: ['redis', 'cluster'], parse: 'list' },
  VNCGATE_REDIS_PASSWORD_FILE: { path: ['redis', 'passwordFile'], parse: 'string' },
  VNCGATE_ALLOWED_ORIGINS: { path: ['origins', 'allowed'], parse: 'list' },
  VNCGATE_ALLOWED_TARGETS: { path: ['backends', 'allowedTargets'], parse: 'list' },
  VNCGATE_API_JWT_SECRET_FILE: { path: ['api', 'jwt', 'hs256SecretFile'], parse: 'string' },
  VNCGATE_API_JWKS_FILE: { path: ['api', 'jwt', 'jwksFile'], parse: 'string' },
  VNCGATE_API_JWKS_URL: { path: ['api', 'jwt', 'jwksUrl'], parse: 'string' },
  VNCGATE_API_JWT_ISSUER: { path: ['api', 'jwt', 'issuer'], parse: 'string' },
  VNCGATE_API_JWT_AUDIENCE: { path: ['api', 'jwt', 'audience'], parse: 'string' },
  VNCGATE_LOG_LEVEL: { path: ['log', 'level'], parse: 'string' },
  VNCGATE_DRAIN_TIMEOUT_MS: { path: ['shutdown', 'drainTimeoutMs'], parse: 'integer' },
  VNCGATE_READINESS_GRACE_MS: { path: ['shutdown', 'readinessGraceMs'], parse: 'integer' },
  VNCGATE_READINESS_CHECKS_TOKEN_STORE: { path: ['health', 'readinessChecksTokenStore'], parse: 'boolean' },
  VNCGATE_METRICS_LISTEN: { path: ['metrics', 'listen'], parse: 'string' },
  VNCGATE_AUDIT_FILE: { path: ['audit', 'file'], parse: 'string' },
  VNCGATE_RECORDINGS_DIR: { path: ['recordings', 'dir'], parse: 'string' },
  VNCGATE_IRONIC_URL: { path: ['ironic', 'url'], parse: 'string' },
  VNCGATE_IRONIC_AUTH: { path: ['ironic', 'auth'], parse: 'string' },
  VNCGATE_IRONIC_USERNAME: { path: ['ironic', 'username'], parse: 'string' },
  VNCGATE_IRONIC_PASSWORD_FILE: { path: ['ironic', 'passwordFile'], parse: 'string' },
  VNCGATE_IRONIC_CA_FILE: { path: ['ironic', 'caFile'], parse: 'string' },
  VNCGATE_IRONIC_AUTO_ENABLE: { path: ['ironic', 'autoEnableConsole'], parse: 'boolean' },
  VNCGATE_KEYSTONE_AUTH_URL: { path: ['keystone', 'authUrl'], parse: 'string' },
  VNCGATE_KEYSTONE_USERNAME: { path: ['keystone', 'username'], parse: 'string' },
  VNCGATE_KEYSTONE_PASSWORD_FILE: { path: ['keystone', 'passwordFile'], parse: 'string' },
  VNCGATE_KEYSTONE_PROJECT_NAME: { path: ['keystone', 'projectName'], parse: 'string' },
  VNCGATE_KEYSTONE_APPLICATION_CREDENTIAL_ID: { path: ['keystone', 'applicationCredentialId'], parse: 'string' },
  VNCGATE_KEYSTONE_APPLICATION_CREDENTIAL_SECRET_FILE: { path: ['keystone', 'applicationCredentialSecretFile'], parse: 'string' },
  VNCGATE_KEYSTONE_REGION: { path: ['keystone', 'region'], parse: 'string' },
  VNCGATE_NOVA_URL: { path: ['nova', 'url'], parse: 'string' },
  VNCGATE_NOVA_AUTH: { path: ['nova', 'auth'], parse: 'string' },
  VNCGATE_NOVA_DB_URLS: { path: ['nova', 'dbUrls'], parse: 'list' },
  VNCGATE_NOVA_DB_URLS_FILE: { path: ['nova', 'dbUrlsFile'], parse: 'string' },
  VNCGATE_NOVA_RESOLVER: { path: ['nova', 'resolver'], parse: 'string' },
} as const satisfies Record<string, { path: readonly string[]; parse: 'string' | 'list' | 'boolean' | 'integer' }>;

/** The file and environment form after validation and defaults: derived from CONFIG_SCHEMA. */
export type RawConfig = Infer<typeof CONFIG_SCHEMA>;
