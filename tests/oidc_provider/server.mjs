// A real OpenID Provider for tsunagu's tests: panva/node-oidc-provider (certified), configured for
// plain http on loopback, PKCE (S256) required, fixed test accounts, a non-interactive login and
// test-only knobs that make the token endpoint return a defective ID token. See README.md.
//
//   node server.mjs [--port N]        (or PORT=N; 0 or nothing = any free port)
//
// Environment:
//   OIDC_CLIENTS                    JSON list of client metadata (client_id, client_secret, redirect_uris,
//                                   token_endpoint_auth_method, ...); response_types ["code"] and
//                                   grant_types ["authorization_code"] are filled in when absent.
//   OIDC_CONFORM_ID_TOKEN_CLAIMS=1  scope claims (email, profile) only from userinfo, not in the ID token.
//
// Prints exactly one line "listening <issuer>" on stdout when it accepts requests. Nothing is fetched:
// the signing key and the cookie key are generated here at start-up.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const MODES = new Set(['normal', 'wrong_nonce', 'expired', 'wrong_aud', 'wrong_iss', 'bad_signature']);

const ACCOUNTS = {
  alice: {
    sub: 'alice',
    email: 'alice@example.jp',
    email_verified: true,
    name: '三木 花子',
    family_name: '三木',
    given_name: '花子',
  },
  bob: {
    sub: 'bob',
    email: 'bob@example.jp',
    email_verified: false,
    name: 'Bob Sanuki',
    family_name: 'Sanuki',
    given_name: 'Bob',
  },
  carol: {
    // No email claim at all.
    sub: 'carol',
    name: 'Carol Naoshima',
    family_name: 'Naoshima',
    given_name: 'Carol',
  },
};

const { values: argv } = parseArgs({ options: { port: { type: 'string' } } });
const requestedPort = Number(argv.port ?? process.env.PORT ?? 0);

function fail(message) {
  process.stderr.write(`oidc test provider: ${message}\n`);
  process.exit(2);
}

function clientsFromEnv() {
  let clients;
  try {
    clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
  } catch (error) {
    fail(`OIDC_CLIENTS is not JSON: ${error.message}`);
  }
  if (!Array.isArray(clients)) fail('OIDC_CLIENTS must be a JSON list of client metadata objects');
  return clients.map(withClientDefaults);
}

function withClientDefaults(metadata) {
  return {
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...metadata,
  };
}

// --- keys (generated, never fetched) ------------------------------------------------------------

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const KID = `test-${crypto.randomBytes(6).toString('hex')}`;
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };

// --- adversarial token responses ------------------------------------------------------------------

let globalMode = 'normal';
const modeByGrant = new Map(); // grantId -> mode chosen by the login that created the grant

const b64url = (buffer) => Buffer.from(buffer).toString('base64url');

function resign(header, payload) {
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  if (header.alg !== 'RS256' || header.kid !== KID) {
    throw new Error(`cannot re-sign an ID token signed with ${header.alg}/${header.kid}`);
  }
  const signature = crypto.sign('sha256', Buffer.from(signingInput), privateKey);
  return `${signingInput}.${b64url(signature)}`;
}

function corrupt(idToken, mode) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'wrong_nonce':
      payload.nonce = `wrong-${crypto.randomBytes(8).toString('hex')}`;
      return resign(header, payload);
    case 'expired':
      payload.iat = now - 7200;
      payload.exp = now - 3600;
      if (payload.auth_time) payload.auth_time = Math.min(payload.auth_time, payload.iat);
      return resign(header, payload);
    case 'wrong_aud':
      payload.aud = 'someone-else';
      if (payload.azp) payload.azp = 'someone-else';
      return resign(header, payload);
    case 'wrong_iss':
      payload.iss = 'http://127.0.0.1:9/not-the-issuer';
      return resign(header, payload);
    case 'bad_signature': {
      // Same header and claims, signature bytes flipped: verifies against nothing.
      const signature = Buffer.from(s, 'base64url');
      for (let i = 0; i < signature.length; i += 7) signature[i] ^= 0xff;
      return `${h}.${p}.${b64url(signature)}`;
    }
    default:
      return idToken;
  }
}

// --- provider -------------------------------------------------------------------------------------

const server = http.createServer();
server.listen(requestedPort, '127.0.0.1');
await new Promise((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
}).catch((error) => fail(`cannot listen on 127.0.0.1:${requestedPort}: ${error.message}`));

const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const clients = clientsFromEnv();
const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'family_name', 'given_name'],
  },
  conformIdTokenClaims: process.env.OIDC_CONFORM_ID_TOKEN_CLAIMS === '1',
  responseTypes: ['code'],
  pkce: { required: () => true }, // only S256 exists in this version
  features: {
    devInteractions: { enabled: false }, // our own, non-interactive interaction endpoint below
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(_ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ ...account }) };
  },
  async renderError(ctx, out, error) {
    ctx.type = 'application/json';
    ctx.body = { ...out, detail: error?.error_detail ?? error?.message };
  },
});

// The library checks static client metadata only when a client is first used: check it now instead.
for (const metadata of clients) {
  await provider.Client.validate(metadata).catch((error) => fail(
    `client ${JSON.stringify(metadata.client_id)} in OIDC_CLIENTS: ${error.error_description ?? error.message}`,
  ));
}

provider.on('server_error', (_ctx, error) => process.stderr.write(`server_error: ${error.stack}\n`));

async function readJson(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

// Test-only admin endpoints: /__test__/mode, /__test__/clients, /__test__/accounts.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/__test__/')) return next();
  try {
    if (ctx.path === '/__test__/mode') {
      if (ctx.method === 'POST') {
        const { mode } = await readJson(ctx);
        if (!MODES.has(mode)) {
          ctx.status = 400;
          ctx.body = { error: `unknown mode ${JSON.stringify(mode)}`, modes: [...MODES] };
          return undefined;
        }
        globalMode = mode;
      }
      ctx.body = { mode: globalMode, modes: [...MODES] };
    } else if (ctx.path === '/__test__/clients' && ctx.method === 'POST') {
      const metadata = withClientDefaults(await readJson(ctx));
      if (!metadata.client_id) metadata.client_id = `client-${crypto.randomBytes(6).toString('hex')}`;
      if (!metadata.client_secret && metadata.token_endpoint_auth_method !== 'none') {
        metadata.client_secret = crypto.randomBytes(24).toString('base64url');
      }
      await provider.Client.validate(metadata); // throws InvalidClientMetadata with a description
      await provider.Client.adapter.upsert(metadata.client_id, metadata);
      ctx.status = 201;
      ctx.body = metadata;
    } else if (ctx.path === '/__test__/accounts') {
      ctx.body = ACCOUNTS;
    } else {
      ctx.status = 404;
      ctx.body = { error: 'no such test endpoint' };
    }
  } catch (error) {
    ctx.status = 400;
    ctx.body = { error: error.error ?? 'bad_request', error_description: error.error_description ?? error.message };
  }
  return undefined;
});

// Non-interactive interaction endpoint: GET /interaction/<uid>?account=<id>[&mode=<mode>][&error=<code>]
// logs in the account (from ?account=, else the authorization request's login_hint) and consents to
// everything requested. ?error=access_denied (or any code) finishes the interaction with that error.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (!match) return next();
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (error) {
    ctx.status = 400;
    ctx.body = { error: error.error ?? 'invalid_request', error_description: error.error_description ?? error.message };
    return undefined;
  }
  if (details.uid !== match[1]) {
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: 'interaction cookie does not match the URL' };
    return undefined;
  }
  const query = ctx.query;
  const mode = query.mode;
  if (mode !== undefined && !MODES.has(mode)) {
    ctx.status = 400;
    ctx.body = { error: `unknown mode ${JSON.stringify(mode)}`, modes: [...MODES] };
    return undefined;
  }
  ctx.respond = false; // interactionFinished writes the 303 itself
  const finish = (result) => provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });

  if (query.error) {
    return finish({ error: query.error, error_description: query.error_description ?? 'denied by the test' });
  }

  const { prompt, params } = details;
  if (prompt.name === 'login') {
    const accountId = query.account || params.login_hint;
    if (!ACCOUNTS[accountId]) {
      ctx.respond = true;
      ctx.status = 400;
      ctx.body = {
        error: 'invalid_request',
        error_description: `test login needs ?account= or login_hint naming one of ${Object.keys(ACCOUNTS).join(', ')}; got ${JSON.stringify(accountId)}`,
      };
      return undefined;
    }
    return finish({ login: { accountId } });
  }

  if (prompt.name === 'consent') {
    const { accountId } = details.session;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    if (mode) modeByGrant.set(grantId, mode);
    return finish({ consent: details.grantId ? {} : { grantId } });
  }

  ctx.respond = true;
  ctx.status = 500;
  ctx.body = { error: 'server_error', error_description: `unexpected prompt ${prompt.name}` };
  return undefined;
});

// Token endpoint: let the library answer, then damage the ID token if a mode says so.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const grantId = ctx.oidc.entities?.AuthorizationCode?.grantId;
  const mode = (grantId && modeByGrant.get(grantId)) || globalMode;
  if (mode !== 'normal') {
    ctx.body = { ...ctx.body, id_token: corrupt(ctx.body.id_token, mode) };
  }
});

server.on('request', provider.callback());

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

process.stdout.write(`listening ${issuer}\n`);
