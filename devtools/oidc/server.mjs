// A local OpenID provider for tests and development, built on the real `oidc-provider` package: it issues the
// codes, checks PKCE, signs the id_tokens and refuses replayed codes. Only the login screen is replaced: an
// automatic interaction signs in the account named by `login_hint` and grants `openid email profile`, so a plain
// HTTP client (or a browser) just follows redirects.
//
//   node server.mjs --port 0 --config config.json      (or --config - to read the JSON from stdin)
//
// When listening it prints one JSON line on stdout: {"event":"ready","url":...,"issuer":...,"metadata_url":...}.
// Everything else (oidc-provider's notices included) goes to stderr, so stdout stays machine-readable.
//
// Config (JSON):
//   style      "google" (one issuer at the root) or "microsoft" (multi-tenant, see below)
//   clients    [{client_id, client_secret, redirect_uris, application_type?}]; application_type "native" lets a
//              loopback redirect URI (http://127.0.0.1/... or http://localhost/...) match on any port (RFC 8252)
//   accounts   {id: {sub, email, email_verified, name, ...claims}}; login_hint names an account by id or email.
//              Microsoft style: `tid` and `xms_edov` claims; optional `issuer_tenant` signs the account's tokens in
//              another tenant than its `tid` (to test a token whose iss does not match its tid)
//   default_account     account used when no login_hint is given (default: the first one)
//   id_token_ttl_seconds                                   (default 3600)
//   discovery_variants  {name: {issuer?, foreign_keys?}}: a copy of the discovery document with another issuer, or
//              whose jwks_uri serves a different key under the same kid, served at <variant base>/.well-known/...
//
// Microsoft style: one oidc-provider instance per tenant id, mounted at /<tid>/v2.0 (its issuer), all sharing one
// signing key as Microsoft's tenants do. /common/v2.0/.well-known/openid-configuration is the multi-tenant document:
// its issuer is the template <base>/{tenantid}/v2.0; /common/oauth2/v2.0/authorize sends the browser to the
// account's tenant; /common/oauth2/v2.0/token hands the code to the tenant that issued it.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

import Provider, { interactionPolicy } from 'oidc-provider';

// oidc-provider prints notices with console.info; keep stdout for the ready line only.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const GRANTED_SCOPES = ['openid', 'email', 'profile'];
const MAX_BODY_BYTES = 64 * 1024;

function parseArgs(argv) {
  const out = { port: 0, config: null };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--port') out.port = Number.parseInt(argv[++i], 10);
    else if (argv[i] === '--config') out.config = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) throw new Error('--port must be 0..65535');
  if (!out.config) throw new Error('--config FILE (or -) is required');
  return out;
}

function readConfig(source) {
  const text = source === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(source, 'utf8');
  const config = JSON.parse(text);
  if (!['google', 'microsoft'].includes(config.style)) throw new Error('config.style must be "google" or "microsoft"');
  if (!Array.isArray(config.clients) || config.clients.length === 0) throw new Error('config.clients must be a non-empty list');
  if (!config.accounts || Object.keys(config.accounts).length === 0) throw new Error('config.accounts must name at least one account');
  return config;
}

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

function publicJwk(jwk) {
  const { kty, n, e, kid, alg, use } = jwk;
  return { kty, n, e, kid, alg, use };
}

// A per-provider in-memory store (oidc-provider's own is private), so the Microsoft "common" token endpoint can tell
// which tenant issued a code. Expired entries are swept on a timer.
function makeStore() {
  const entries = new Map();
  const get = (key) => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt && entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry.value;
  };
  const set = (key, value, expiresIn) => {
    entries.set(key, { value, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
  };
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, entry] of entries) if (entry.expiresAt && entry.expiresAt <= now) entries.delete(key);
  }, 30_000);
  sweep.unref();

  class Adapter {
    constructor(model) { this.model = model; }

    key(id) { return `${this.model}:${id}`; }

    async upsert(id, payload, expiresIn) {
      set(this.key(id), payload, expiresIn);
      if (this.model === 'Session' && payload.uid) set(`sessionUid:${payload.uid}`, id, expiresIn);
      if (payload.userCode) set(`userCode:${payload.userCode}`, id, expiresIn);
      if (payload.grantId) {
        const members = get(`grant:${payload.grantId}`) ?? [];
        members.push(this.key(id));
        set(`grant:${payload.grantId}`, members, expiresIn);
      }
    }

    async find(id) { return get(this.key(id)); }

    async findByUid(uid) {
      const id = get(`sessionUid:${uid}`);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = get(`userCode:${userCode}`);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const payload = get(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) { entries.delete(this.key(id)); }

    async revokeByGrantId(grantId) {
      for (const key of get(`grant:${grantId}`) ?? []) entries.delete(key);
      entries.delete(`grant:${grantId}`);
    }
  }

  return { Adapter, has: (model, id) => get(`${model}:${id}`) !== undefined };
}

function accountIndex(config) {
  const byKey = new Map();
  const bySub = new Map();
  for (const [id, raw] of Object.entries(config.accounts)) {
    const claims = { ...raw };
    delete claims.issuer_tenant;
    claims.sub ??= id;
    const account = { id, claims, tenant: raw.issuer_tenant ?? raw.tid };
    byKey.set(id, account);
    if (typeof claims.email === 'string') byKey.set(`email:${claims.email.toLowerCase()}`, account);
    bySub.set(claims.sub, account);
  }
  const fallback = byKey.get(config.default_account ?? Object.keys(config.accounts)[0]);
  return {
    byHint(hint) {
      if (hint === undefined || hint === null || hint === '') return fallback;
      return byKey.get(hint) ?? byKey.get(`email:${String(hint).toLowerCase()}`);
    },
    bySub: (sub) => bySub.get(sub),
  };
}

function claimsConfig(style) {
  const base = { acr: null, sid: null, auth_time: null, iss: null };
  if (style === 'microsoft') {
    return {
      ...base,
      openid: ['sub', 'tid', 'oid'],
      email: ['email', 'xms_edov'],
      profile: ['name', 'preferred_username'],
    };
  }
  return {
    ...base,
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'picture', 'locale'],
  };
}

function makeProvider({ issuer, config, accounts, jwk, cookieSuffix }) {
  const store = makeStore();
  const mountPath = new URL(issuer).pathname.replace(/\/$/, '');
  const policy = interactionPolicy.base();
  // A browser that is still signed in here as someone else must sign in again when login_hint names another account.
  policy.get('login').checks.push(new interactionPolicy.Check(
    'login_hint_changed',
    'login_hint names another account than the signed-in one',
    'login_required',
    (ctx) => {
      const { oidc } = ctx;
      const hint = oidc.params.login_hint;
      const wanted = accounts.byHint(hint);
      if (hint && oidc.session.accountId && wanted?.claims.sub !== oidc.session.accountId) {
        return interactionPolicy.Check.REQUEST_PROMPT;
      }
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    },
  ));
  const idTokenTtl = Number(config.id_token_ttl_seconds ?? 3600);

  const provider = new Provider(issuer, {
    adapter: store.Adapter,
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      application_type: c.application_type ?? 'web',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    })),
    jwks: { keys: [jwk] },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
      // Cookies are per host, not per port: names of our own keep clear of the app's cookies on 127.0.0.1.
      names: {
        session: `op_session${cookieSuffix}`,
        interaction: `op_interaction${cookieSuffix}`,
        resume: `op_resume${cookieSuffix}`,
      },
    },
    claims: claimsConfig(config.style),
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    // Like Google and Microsoft: the id_token from the token endpoint carries the granted scopes' claims.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: false },
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}`,
    },
    async findAccount(_ctx, sub) {
      const account = accounts.bySub(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ ...account.claims }) };
    },
    async renderError(ctx, out) {
      ctx.type = 'text/plain';
      ctx.body = `oidc error: ${out.error}: ${out.error_description ?? ''}\n`;
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: idTokenTtl,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc server_error', err));
  return { provider, store, mountPath, callback: provider.callback() };
}

async function finishInteraction(mounted, accounts, req, res) {
  const { provider } = mounted;
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  let accountId = details.session?.accountId;
  const result = {};
  if (prompt.name === 'login') {
    const account = accounts.byHint(params.login_hint);
    if (!account) {
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'no test account matches login_hint',
      }, { mergeWithLastSubmission: false });
      return;
    }
    accountId = account.claims.sub;
    result.login = { accountId };
    if (details.session?.uid && details.session.accountId !== accountId) {
      // Switching accounts: end the old provider session now, or the resume would stop at a logout confirmation.
      const old = await provider.Session.findByUid(details.session.uid);
      if (old) await old.destroy();
      delete details.session;
      await details.save(details.exp - Math.floor(Date.now() / 1000));
    }
  }
  // Consent: grant the requested scopes among openid/email/profile, in the same step as the login.
  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (!grant || grant.accountId !== accountId) grant = new provider.Grant({ accountId, clientId: params.client_id });
  const requested = String(params.scope ?? '').split(' ').filter((s) => GRANTED_SCOPES.includes(s));
  grant.addOIDCScope(requested.join(' '));
  result.consent = { grantId: await grant.save() };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// Hand a request to an oidc-provider mounted at `mountPath`, the way koa-mount/express do.
function forward(mounted, req, res, path, search = '') {
  req.originalUrl = path + search; // oidc-provider derives its mount path from originalUrl minus url
  req.url = (path.slice(mounted.mountPath.length) || '/') + search;
  return mounted.callback(req, res);
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function fetchLocal(base, path) {
  return new Promise((resolve, reject) => {
    http.get(new URL(path, base), (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(err);
        }
      });
    }).on('error', reject);
  });
}

function commonDiscovery(base, firstTenantDoc) {
  // The shape of https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration.
  return {
    issuer: `${base}/{tenantid}/v2.0`,
    authorization_endpoint: `${base}/common/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/common/oauth2/v2.0/token`,
    jwks_uri: `${base}/common/discovery/v2.0/keys`,
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    code_challenge_methods_supported: ['S256'],
    claims_supported: firstTenantDoc.claims_supported,
    tenant_region_scope: null,
    cloud_instance_name: 'localhost',
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const config = readConfig(args.config);
  const accounts = accountIndex(config);
  const jwk = signingKey();
  const foreignJwk = { ...signingKey(), kid: jwk.kid };
  const variants = config.discovery_variants ?? {};

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;

  const mounts = [];
  let metadataUrl;
  let issuer;
  if (config.style === 'google') {
    mounts.push(makeProvider({ issuer: base, config, accounts, jwk, cookieSuffix: '' }));
    issuer = base;
    metadataUrl = `${base}/.well-known/openid-configuration`;
  } else {
    const tenants = [...new Set(Object.values(config.accounts).map((a) => a.issuer_tenant ?? a.tid))];
    if (tenants.some((t) => typeof t !== 'string' || !/^[A-Za-z0-9-]+$/.test(t))) {
      throw new Error('microsoft style: every account needs a tid (letters, digits, -)');
    }
    for (const tid of tenants) {
      mounts.push(makeProvider({ issuer: `${base}/${tid}/v2.0`, config, accounts, jwk, cookieSuffix: `_${tid}` }));
    }
    issuer = `${base}/{tenantid}/v2.0`;
    metadataUrl = `${base}/common/v2.0/.well-known/openid-configuration`;
  }
  const byTenant = new Map(mounts.map((m) => [m.mountPath.split('/')[1], m]));

  async function discoveryDocument() {
    if (config.style === 'google') return fetchLocal(base, '/.well-known/openid-configuration');
    return commonDiscovery(base, await fetchLocal(base, `${mounts[0].mountPath}/.well-known/openid-configuration`));
  }

  async function handle(req, res) {
    const url = new URL(req.url, base);
    const path = url.pathname;

    const variant = /^\/variants\/([A-Za-z0-9_-]+)(\/.*)$/.exec(path);
    if (variant && Object.hasOwn(variants, variant[1])) {
      const [, name, rest] = variant;
      const spec = variants[name];
      const prefix = `${base}/variants/${name}`;
      if (req.method === 'GET' && rest === '/.well-known/openid-configuration') {
        const doc = await discoveryDocument();
        if (spec.issuer) doc.issuer = spec.issuer;
        if (spec.foreign_keys) doc.jwks_uri = `${prefix}/jwks`;
        sendJson(res, 200, doc);
        return;
      }
      if (req.method === 'GET' && rest === '/jwks' && spec.foreign_keys) {
        sendJson(res, 200, { keys: [publicJwk(foreignJwk)] });
        return;
      }
    }

    if (config.style === 'microsoft' && path.startsWith('/common/')) {
      if (req.method === 'GET' && path === '/common/v2.0/.well-known/openid-configuration') {
        sendJson(res, 200, await discoveryDocument());
        return;
      }
      if (req.method === 'GET' && path === '/common/discovery/v2.0/keys') {
        sendJson(res, 200, { keys: [publicJwk(jwk)] });
        return;
      }
      if (req.method === 'GET' && path === '/common/oauth2/v2.0/authorize') {
        // Microsoft's home-realm discovery, reduced to the login_hint: on to the account's own tenant.
        const account = accounts.byHint(url.searchParams.get('login_hint'));
        const target = byTenant.get(account?.tenant) ?? mounts[0];
        res.writeHead(302, { location: `${base}${target.mountPath}/auth${url.search}`, 'cache-control': 'no-store' });
        res.end();
        return;
      }
      if (req.method === 'POST' && path === '/common/oauth2/v2.0/token') {
        const raw = await readBody(req);
        const { code } = querystring.parse(raw);
        const target = mounts.find((m) => typeof code === 'string' && m.store.has('AuthorizationCode', code)) ?? mounts[0];
        req.body = raw; // the stream is spent; oidc-provider reads an already-read body from req.body
        await forward(target, req, res, `${target.mountPath}/token`);
        return;
      }
    }

    for (const mounted of mounts) {
      const { mountPath } = mounted;
      if (path !== mountPath && !path.startsWith(`${mountPath}/`)) continue;
      const interaction = /\/interaction\/([A-Za-z0-9_-]+)$/.exec(path.slice(mountPath.length));
      if (req.method === 'GET' && interaction) {
        await finishInteraction(mounted, accounts, req, res);
        return;
      }
      await forward(mounted, req, res, path, url.search);
      return;
    }
    sendJson(res, 404, { error: 'not_found' });
  }

  server.on('request', (req, res) => {
    handle(req, res).catch((err) => {
      console.error('request failed', req.method, req.url?.split('?')[0], err?.message ?? err);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.end();
    });
  });

  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      server.close();
      server.closeAllConnections();
      process.exit(0);
    });
  }

  process.stdout.write(`${JSON.stringify({
    event: 'ready',
    url: base,
    issuer,
    metadata_url: metadataUrl,
    style: config.style,
    tenants: config.style === 'microsoft' ? [...byTenant.keys()] : [],
  })}\n`);
}

main().catch((err) => {
  console.error(`oidc server failed to start: ${err?.stack ?? err}`);
  process.exit(1);
});
