// Interop check: the real @orpc/client 1.x (RPCLink + ClientRetryPlugin) against a server that
// speaks oRPC's RPC protocol, version 1. Usage: node orpc.mjs <base>
// e.g. node orpc.mjs http://127.0.0.1:3100/rpc
// Optional env: DROP_URL, CLEANUP_URL, AUTH_PROCEDURES (see README.md). Exits non-zero on the first
// failed check. The steps are lib.mjs's orpcHttpSteps, which orpc-v2.mjs runs with the 2.x client.
import assert from 'node:assert/strict'
import { createORPCClient, getEventMeta, ORPCError } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import { ClientRetryPlugin } from '@orpc/client/plugins'
import { fail, orpcHttpSteps, requestLog } from './lib.mjs'

const base = process.argv[2]
if (!base) fail('usage: node orpc.mjs <base url, e.g. http://127.0.0.1:3100/rpc>')

// Every request the link makes goes through this fetch, so checks can see what was sent.
const requests = requestLog()
const link = new RPCLink({
  url: base,
  fetch: (request, init) => requests.record(request.url, request.method, request.headers, null, fetch(request, init)),
  // a call's context.token becomes its bearer token (the auth steps); other calls send none
  headers: ({ context }) => (context?.token ? { authorization: `Bearer ${context.token}` } : {}),
  // retry is opt-in per call (context.retry): a plain call must surface errors, not retry them
  plugins: [new ClientRetryPlugin({ default: { retry: 0 } })],
})

await orpcHttpSteps({
  client: createORPCClient(link),
  ORPCError,
  getEventMeta,
  requests,
  retryPlugin: 'ClientRetryPlugin',
  env: process.env,
  // 1.x: the error carries its HTTP status
  expectError: (err, { code, status, message, data, defined }) => {
    assert.ok(err instanceof ORPCError, `expected ORPCError, got ${err?.constructor?.name}: ${err}`)
    assert.equal(err.code, code)
    assert.equal(err.status, status)
    if (message !== undefined) assert.equal(err.message, message)
    if (data !== undefined) assert.deepEqual(err.data, data)
    if (defined !== undefined) assert.equal(err.defined, defined)
  },
  statusOf: (err) => err.status,
})

console.log('orpc: all checks passed')
process.exit(0)
