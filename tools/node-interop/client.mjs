// client.mjs: an OAuth 2.0 client built on oauth4webapi alone. It reads a
// JSON job on stdin, gets an access token from the authorization server with
// the client credentials grant (RFC 6749 §4.4), DPoP-bound when job.dpop_alg
// is set (RFC 9449 §5, retrying once on use_dpop_nonce, §8), calls each of
// job.resources with it (§7, retrying once on a resource server's
// use_dpop_nonce, §9), and writes what happened as JSON on stdout: an OAuth
// error from the token endpoint as token_status and token_error. Any other
// failure is written to stderr and exits 1.
//
// job: {issuer, client_id, auth: "client_secret_basic" | "private_key_jwt",
//       client_secret?, private_jwk?, audience, scope, dpop_alg?, resources: [url]}
import * as oauth from 'oauth4webapi'

const job = JSON.parse(await readStdin())
// m2mauth serves TLS (with a test CA, given in NODE_EXTRA_CA_CERTS); the
// resource servers of the tests are plain http on loopback, which
// oauth4webapi refuses unless told.
const plainHTTP = { [oauth.allowInsecureRequests]: true }

const issuer = new URL(job.issuer)
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2' }),
)
const client = { client_id: job.client_id }

let clientAuth
switch (job.auth) {
  case 'client_secret_basic':
    clientAuth = oauth.ClientSecretBasic(job.client_secret)
    break
  case 'private_key_jwt': {
    const { d, ...pub } = job.private_jwk
    const alg = job.private_jwk.alg
    const key = await crypto.subtle.importKey('jwk', { ...pub, d }, importParams(alg), false, ['sign'])
    clientAuth = oauth.PrivateKeyJwt({ key, kid: job.private_jwk.kid })
    break
  }
  default:
    throw new Error(`unknown auth ${job.auth}`)
}

let dpop
let jkt
if (job.dpop_alg) {
  const keyPair = await oauth.generateKeyPair(job.dpop_alg)
  dpop = oauth.DPoP(client, keyPair)
  jkt = await dpop.calculateThumbprint()
}

const out = { token_nonce_retries: 0, jkt, resources: [] }
const params = new URLSearchParams({ audience: job.audience, scope: job.scope })
let token
for (;;) {
  const response = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, params, { DPoP: dpop })
  try {
    token = await oauth.processClientCredentialsResponse(as, client, response)
    break
  } catch (err) {
    if (dpop && oauth.isDPoPNonceError(err) && out.token_nonce_retries === 0) {
      out.token_nonce_retries++ // the handle has cached the DPoP-Nonce
      continue
    }
    // An OAuth error answer (RFC 6749 §5.2), which the job may expect. A
    // 401 with a WWW-Authenticate challenge (invalid_client after HTTP
    // Basic) is thrown before the body is read.
    if (err instanceof oauth.ResponseBodyError) {
      out.token_status = err.status
      out.token_error = err.error
    } else if (err instanceof oauth.WWWAuthenticateChallengeError) {
      out.token_status = err.response.status
      out.token_error = (await err.response.json().catch(() => ({}))).error
    } else {
      throw err
    }
    process.stdout.write(JSON.stringify(out))
    process.exit(0)
  }
}
out.token_type = token.token_type // lower-cased by oauth4webapi
out.expires_in = token.expires_in
out.scope = token.scope
out.access_token = token.access_token

for (const url of job.resources) {
  const r = { url, nonce_retries: 0 }
  for (;;) {
    try {
      const response = await oauth.protectedResourceRequest(token.access_token, 'GET', new URL(url), new Headers(), null, { DPoP: dpop, ...plainHTTP })
      r.status = response.status
      r.body = await response.json()
      break
    } catch (err) {
      if (dpop && oauth.isDPoPNonceError(err) && r.nonce_retries === 0) {
        r.nonce_retries++
        continue
      }
      if (err instanceof oauth.WWWAuthenticateChallengeError) {
        r.status = err.response.status
        r.challenges = err.cause
        break
      }
      throw err
    }
  }
  out.resources.push(r)
}

process.stdout.write(JSON.stringify(out))

function importParams(alg) {
  switch (alg) {
    case 'ES256':
      return { name: 'ECDSA', namedCurve: 'P-256' }
    case 'PS256':
      return { name: 'RSA-PSS', hash: 'SHA-256' }
    default:
      throw new Error(`unsupported client key alg ${alg}`)
  }
}

async function readStdin() {
  let s = ''
  for await (const chunk of process.stdin) s += chunk
  return s
}
