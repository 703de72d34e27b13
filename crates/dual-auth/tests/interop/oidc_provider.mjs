// A real, certified OAuth 2.0 server (panva's oidc-provider) for the adapter tests.
// It speaks Keycloak's paths under the issuer https://localhost:PORT/realms/corp and
// authenticates two clients: one by client_secret_jwt, one by private_key_jwt. It copies
// the `act` claim from the verified client assertion into the JWT access token it issues.
//
// Environment: OIDC_PROVIDER_MODULE (path to oidc-provider's lib/index.js), PORT,
// TLS_CERT, TLS_KEY, CLIENT_SECRET, CLIENT_PUBLIC_KEY (PEM path), API_AUDIENCE.
import fs from 'node:fs';
import https from 'node:https';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const port = Number(process.env.PORT);
const realm = '/realms/corp';
const issuer = `https://localhost:${port}${realm}`;
const api = process.env.API_AUDIENCE;

const agentJwk = crypto.createPublicKey(fs.readFileSync(process.env.CLIENT_PUBLIC_KEY)).export({ format: 'jwk' });
agentJwk.kid = 'agent-key-1';

const client = (id, method, extra) => ({
  client_id: id,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: method,
  scope: 'finance.read',
  ...extra,
});

const provider = new Provider(issuer, {
  clients: [
    client('secret-agent', 'client_secret_jwt', { client_secret: process.env.CLIENT_SECRET }),
    client('key-agent', 'private_key_jwt', { jwks: { keys: [agentJwk] } }),
  ],
  scopes: ['openid', 'finance.read'],
  clientAuthMethods: ['client_secret_jwt', 'private_key_jwt'],
  enabledJWA: { clientAuthSigningAlgValues: ['HS256', 'RS256', 'PS256', 'ES256'] },
  routes: { token: '/protocol/openid-connect/token', jwks: '/protocol/openid-connect/certs' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => api,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'finance.read', audience: api, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
    },
  },
  // The identity provider's "protocol mapper": act from the verified client assertion.
  async extraTokenClaims(ctx) {
    const assertion = ctx.oidc.body?.client_assertion ?? ctx.oidc.params?.client_assertion;
    if (!assertion) return undefined;
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1], 'base64url').toString());
    return claims.act ? { act: claims.act } : undefined;
  },
});

const handle = provider.callback();
const server = https.createServer({ cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) }, (req, res) => {
  if (!req.url.startsWith(realm)) {
    res.statusCode = 404;
    res.end();
    return;
  }
  // Mounted under the realm path, as express would: oidc-provider reads the prefix from originalUrl.
  req.originalUrl = req.url;
  req.url = req.url.slice(realm.length) || '/';
  handle(req, res);
});
server.listen(port, '127.0.0.1', () => console.log('READY'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
