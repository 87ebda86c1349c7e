// resource-server.mjs: a resource server whose token check is oauth4webapi's
// validateJwtAccessToken alone (RFC 9068 JWT access tokens, RFC 9449 DPoP
// proofs). It reads {issuer, audience} on stdin, discovers the issuer's
// metadata (over TLS: NODE_EXTRA_CA_CERTS names the test CA), listens on a
// loopback http port and writes {"url": ...} as one line on
// stdout. Every request must carry a DPoP-bound token with a proof for it:
// 200 with {claims} if it validates, 401 with {error, code} if not. It runs
// until it is killed.
import * as http from 'node:http'
import * as oauth from 'oauth4webapi'

let input = ''
for await (const chunk of process.stdin) input += chunk
const job = JSON.parse(input)

const issuer = new URL(job.issuer)
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2' }),
)

const server = http.createServer(async (req, res) => {
  // The URL the client addressed: what the proof's htu must match.
  const request = new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers: req.headers })
  let status, body
  try {
    const claims = await oauth.validateJwtAccessToken(as, request, job.audience, { requireDPoP: true })
    status = 200
    body = { claims }
  } catch (err) {
    status = 401
    body = { error: err.message, code: err.code ?? err.name }
  }
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
})
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address()
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}` }) + '\n')
})
