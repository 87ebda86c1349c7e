// node-oidc-provider configured as m2mauth is for the load comparison:
// the client credentials grant (RFC 6749 §4.4) with client_secret_basic,
// resource indicators (RFC 8707) and JWT access tokens (RFC 9068), one
// client per signing algorithm (RS256 on a 2048-bit key, ES256 on P-256).
//
//   node server.mjs PORT
//
// listens on 127.0.0.1:PORT and prints "listening on http://127.0.0.1:PORT".
// A client's audience is its default resource, so the request needs no
// `resource` parameter; `audience`, which tools/load sends, is ignored.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const secret = 'peer-bench-secret-0123456789abcdef';
const algs = ['RS256', 'ES256'];
const audience = (alg) => `https://bench-${alg.toLowerCase()}.example/`;

const jwk = (alg) => {
  const { privateKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: alg.toLowerCase(), alg, use: 'sig' };
};

const provider = new Provider(issuer, {
  clients: algs.map((alg) => ({
    client_id: `peer-${alg.toLowerCase()}`,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys: algs.map(jwk) },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => audience(client.clientId.slice('peer-'.length).toUpperCase()),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        const alg = algs.find((a) => audience(a) === resource);
        if (!alg) throw new Error(`unknown resource ${resource}`);
        return { scope: 'read:meters', audience: resource, accessTokenTTL: 600, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
      },
    },
  },
});
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
