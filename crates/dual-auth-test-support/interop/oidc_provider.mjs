// A real, certified OAuth 2.0 server (panva's oidc-provider) for the adapters' and the
// verifier's tests. It speaks Keycloak's paths under the issuer
// https://localhost:PORT/realms/corp and issues JWT access tokens for API_AUDIENCE:
//
// - client_credentials for `secret-agent` (client_secret_jwt) and `key-agent`
//   (private_key_jwt): the dual-auth layout, with `act` copied from the verified client
//   assertion (the guides' protocol mapper);
// - RFC 8693 token exchange for `exchange-agent` and `sub-agent` (client_secret_basic):
//   the subject token is either the application's signed act JWT (token type jwt) or an
//   access token this server issued; the new token has sub = the human and `act` = the
//   calling agent, nesting the subject token's `act` (a delegation chain).
//
// Test controls, as an operator would act on a deployment: POST /admin/rotate signs with
// the next key and publishes it before the old one; GET /admin/stats counts JWKS requests.
//
// It listens on a port of its own choosing on 127.0.0.1 and prints "READY <port>".
// Environment: OIDC_PROVIDER_MODULE, TLS_CERT, TLS_KEY, ISSUER_KEYS, CLIENT_SECRET,
// CLIENT_PUBLIC_KEY (key-agent's public key, PEM path), APP_PUBLIC_KEY (the application's,
// PEM path), API_AUDIENCE.
import fs from 'node:fs';
import https from 'node:https';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const realm = '/realms/corp';
let issuer;
const api = process.env.API_AUDIENCE;
const appKey = crypto.createPublicKey(fs.readFileSync(process.env.APP_PUBLIC_KEY));
const agentJwk = { ...crypto.createPublicKey(fs.readFileSync(process.env.CLIENT_PUBLIC_KEY)).export({ format: 'jwk' }), kid: 'agent-key-1' };
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

let signingKeys = [];
let jwksRequests = 0;
let handle;

// The issuer's signing keys come from the test (ISSUER_KEYS: PEM paths, one per rotation):
// node 20's generateKeyPairSync can deadlock in garbage collection (seen here).
const issuerKeyFiles = process.env.ISSUER_KEYS.split(':');
function newKey(n) {
  const privateKey = crypto.createPrivateKey(fs.readFileSync(issuerKeyFiles[n - 1]));
  return { ...privateKey.export({ format: 'jwk' }), kid: `issuer-key-${n}`, alg: 'RS256', use: 'sig' };
}

const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());

// RS256 verification with a known public key; the claims on success, else null.
function verifyRs256(token, publicKey) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return null;
  const header = decode(parts[0]);
  if (header.alg !== 'RS256') return null;
  const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], 'base64url'));
  if (!ok) return null;
  const claims = decode(parts[1]);
  return claims.exp > Date.now() / 1000 ? { header, claims } : null;
}

// Exchanged tokens' extra claims, handed from the grant handler to extraTokenClaims.
const exchangeClaims = new WeakMap();

function buildProvider() {
  const client = (id, method, grants, extra) => ({
    client_id: id,
    grant_types: grants,
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: method,
    scope: 'finance.read',
    ...extra,
  });
  const resourceServer = { scope: 'finance.read', audience: api, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
  const provider = new Provider(issuer, {
    clients: [
      client('secret-agent', 'client_secret_jwt', ['client_credentials'], { client_secret: process.env.CLIENT_SECRET }),
      client('key-agent', 'private_key_jwt', ['client_credentials'], { jwks: { keys: [agentJwk] } }),
      client('exchange-agent', 'client_secret_basic', [EXCHANGE], { client_secret: process.env.CLIENT_SECRET }),
      client('sub-agent', 'client_secret_basic', [EXCHANGE], { client_secret: process.env.CLIENT_SECRET }),
    ],
    jwks: { keys: signingKeys },
    scopes: ['openid', 'finance.read'],
    clientAuthMethods: ['client_secret_jwt', 'private_key_jwt', 'client_secret_basic'],
    enabledJWA: { clientAuthSigningAlgValues: ['HS256', 'RS256', 'PS256', 'ES256'] },
    routes: { token: '/protocol/openid-connect/token', jwks: '/protocol/openid-connect/certs' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => api,
        useGrantedResource: () => true,
        getResourceServerInfo: () => resourceServer,
      },
    },
    async extraTokenClaims(ctx, token) {
      if (exchangeClaims.has(token)) return exchangeClaims.get(token);
      const assertion = ctx?.oidc.body?.client_assertion ?? ctx?.oidc.params?.client_assertion;
      if (!assertion) return undefined;
      const claims = decode(assertion.split('.')[1]);
      return claims.act ? { act: claims.act } : undefined;
    },
  });

  provider.registerGrantType(EXCHANGE, async (ctx) => {
    const { subject_token: subjectToken, subject_token_type: subjectType, scope } = ctx.oidc.params;
    const fail = (description) => {
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: description };
    };
    let human;
    let priorAct;
    if (subjectType === JWT_TYPE) {
      // The application's act JWT, for this issuer.
      const verified = verifyRs256(subjectToken, appKey);
      if (!verified || verified.claims.aud !== issuer || !verified.claims.act?.sub) return fail('subject_token is not a valid act JWT for this issuer');
      human = verified.claims.act;
    } else if (subjectType === ACCESS_TOKEN_TYPE) {
      // An access token this server issued (its current or previous key).
      const kid = decode(String(subjectToken).split('.')[0]).kid;
      const jwk = signingKeys.find((k) => k.kid === kid);
      const verified = jwk && verifyRs256(subjectToken, crypto.createPublicKey({ key: jwk, format: 'jwk' }));
      if (!verified || verified.claims.iss !== issuer) return fail('subject_token is not an access token of this issuer');
      human = { sub: verified.claims.sub, email: verified.claims.email, name: verified.claims.name };
      priorAct = verified.claims.act;
    } else {
      return fail('unsupported subject_token_type');
    }
    const { client } = ctx.oidc;
    const token = new ctx.oidc.provider.AccessToken({ accountId: human.sub, client, scope: scope || 'finance.read', gty: 'token-exchange' });
    token.resourceServer = { ...resourceServer, identifier: () => api };
    const act = priorAct ? { sub: client.clientId, act: priorAct } : { sub: client.clientId };
    exchangeClaims.set(token, { act, ...(human.email ? { email: human.email } : {}), ...(human.name ? { name: human.name } : {}) });
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  }, ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'scope', 'audience', 'resource']);
  return provider.callback();
}

signingKeys = [newKey(1)];

const server = https.createServer({ cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) }, (req, res) => {
  if (req.url === '/admin/rotate' && req.method === 'POST' && signingKeys.length < issuerKeyFiles.length) {
    signingKeys = [newKey(signingKeys.length + 1), ...signingKeys];
    handle = buildProvider();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ signing_kid: signingKeys[0].kid }));
    return;
  }
  if (req.url === '/admin/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ jwks_requests: jwksRequests }));
    return;
  }
  if (!req.url.startsWith(realm)) {
    res.statusCode = 404;
    res.end();
    return;
  }
  if (req.url.startsWith(`${realm}/protocol/openid-connect/certs`)) jwksRequests += 1;
  // Mounted under the realm path, as express would: oidc-provider reads the prefix from originalUrl.
  req.originalUrl = req.url;
  req.url = req.url.slice(realm.length) || '/';
  handle(req, res);
});
// Port 0: the system picks a free port, printed for the test (no race for a free port).
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `https://localhost:${port}${realm}`;
  handle = buildProvider();
  console.log(`READY ${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
