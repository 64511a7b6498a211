// Interop check: the real @orpc/client 2.x (installed as `@orpc-v2/client`: RPCLink +
// RetryLinkPlugin) against a server that speaks oRPC's RPC protocol, version 2.
// Usage: node orpc-v2.mjs <base>   e.g. node orpc-v2.mjs http://127.0.0.1:8080/rpc2
// Optional env: DROP_URL, CLEANUP_URL, AUTH_PROCEDURES, UNDEFINED_PROCEDURES (see README.md).
// Exits non-zero on the first failed check. First the steps orpc.mjs runs with 1.x (lib.mjs's
// orpcHttpSteps), then what only version 2 has.
import assert from 'node:assert/strict'
import http from 'node:http'
import https from 'node:https'
import {
  COMMON_ERROR_STATUS_MAP,
  createORPCClient,
  getEventMeta,
  isDefinedError,
  isInferableError,
  ORPCError,
  safe,
} from '@orpc-v2/client'
import { RPCLink } from '@orpc-v2/client/fetch'
import { RetryLinkPlugin } from '@orpc-v2/client/plugins'
import { fail, orpcHttpSteps, requestLog, settled, step, thrown, withTimeout } from './lib.mjs'

const base = process.argv[2]
if (!base) fail('usage: node orpc-v2.mjs <base url, e.g. http://127.0.0.1:8080/rpc2>')
const { AUTH_PROCEDURES, CLEANUP_URL, UNDEFINED_PROCEDURES } = process.env
// 2.x's link takes the origin and the path apart: `url` is the prefix, without origin.
const { origin, pathname } = new URL(base)

// Every request the links make goes through the link's fetch, so checks can see what was sent.
// 2.x calls it as fetch(url, init), `init.body` being what goes over the wire.
const requests = requestLog()
const link = (options = {}) =>
  new RPCLink({
    origin,
    url: pathname,
    fetch: (url, init) => requests.record(url, init.method, new Headers(init.headers), init.body, fetch(url, init)),
    // a call's context.token becomes its bearer token (the auth steps); other calls send none
    headers: ({ context }) => (context?.token ? { authorization: `Bearer ${context.token}` } : {}),
    // retry is opt-in per call (context.retry): a plain call must surface errors, not retry them
    plugins: [new RetryLinkPlugin({ default: { retry: 0 } })],
    ...options,
  })
const client = createORPCClient(link())

// 2.x's error has no `status` (neither has its wire body: the client refuses an error body
// with any key but defined, inferable, code, message and data); a caller gets the status from
// the code (COMMON_ERROR_STATUS_MAP). `inferable` is new: true for the errors a procedure
// declared (the defined ones) or returned; Outer's are inferable exactly when defined.
const expectError = (err, { code, status, message, data, defined }) => {
  assert.ok(err instanceof ORPCError, `expected ORPCError, got ${err?.constructor?.name}: ${err}`)
  assert.equal(err.code, code)
  assert.ok(!('status' in err), `a 2.x ORPCError has no status, this one has ${err.status}`)
  assert.equal(COMMON_ERROR_STATUS_MAP[err.code], status)
  assert.equal(typeof err.defined, 'boolean')
  assert.equal(typeof err.inferable, 'boolean')
  assert.equal(err.inferable, err.defined)
  if (message !== undefined) assert.equal(err.message, message)
  if (data !== undefined) assert.deepEqual(err.data, data)
  if (defined !== undefined) assert.equal(err.defined, defined)
}

await orpcHttpSteps({
  client,
  ORPCError,
  getEventMeta,
  requests,
  retryPlugin: 'RetryLinkPlugin',
  env: process.env,
  expectError,
  statusOf: (err) => COMMON_ERROR_STATUS_MAP[err.code] ?? 500,
})

// ---- what only version 2 has ----

const next = (it, what, ms = 5000) => withTimeout(it.next(), ms, what)

await step('undefined input goes as no body and no content-type; a value as {"json":…} with application/json', async () => {
  const none = ['/failing', '/failing5xx', '/post/live'].flatMap((p) => requests.to(p))
  if (AUTH_PROCEDURES) none.push(...requests.to('/me'), ...requests.to('/mentions/live'))
  assert.ok(none.length > 0)
  for (const r of none) {
    assert.equal(r.body, undefined, `${r.path} sent a body: ${r.body}`)
    assert.equal(r.contentType, null, `${r.path} sent content-type ${r.contentType}`)
  }
  const [ping] = requests.to('/ping')
  assert.equal(ping.body, '{"json":{"n":1}}')
  assert.equal(ping.contentType, 'application/json')
  // a unary answer is JSON, a stream's an event stream
  assert.equal(ping.answerType, 'application/json')
  assert.equal(requests.to('/post/live')[0].answerType, 'text/event-stream')
})

await step('errors are 2.x bodies: safe() gives an undeclared error (invalid input) back as not inferable', async () => {
  const [error, data, inferableError, isSuccess] = await withTimeout(safe(client.ping({ n: 'x' })), 5000, 'ping')
  expectError(error, { code: 'BAD_REQUEST', status: 400, defined: false })
  assert.equal(requests.to('/ping').at(-1).status, 400)
  assert.deepEqual([data, inferableError, isSuccess, isInferableError(error)], [undefined, null, false, false])
})

if (AUTH_PROCEDURES) {
  await step('safe(me()) without a token: the declared UNAUTHORIZED is inferable (isDefinedError, inferableError)', async () => {
    const [error, , inferableError, isSuccess] = await withTimeout(safe(client.me()), 5000, 'me')
    expectError(error, { code: 'UNAUTHORIZED', status: 401, defined: true })
    assert.equal(inferableError, error)
    assert.equal(isSuccess, false)
    assert.ok(isDefinedError(error) && isInferableError(error))
  })

  // The meta's types are names in 2.x: a bigint goes as {"json":{"n":"5"},"meta":[["bigint","n"]]}.
  // Outer reads a bigint into the JSON number (its ping takes a number); the reference server's
  // zod schema refuses a bigint where it wants a number, so this step is Outer's chat's only.
  await step('ping {n: 5n}: the meta [["bigint","n"]] is read, the answer is {n: 5}', async () => {
    assert.deepEqual(await withTimeout(client.ping({ n: 5n }), 5000, 'ping'), { n: 5 })
    assert.equal(requests.to('/ping').at(-1).body, '{"json":{"n":"5"},"meta":[["bigint","n"]]}')
  })
} else {
  console.log('skip v2 auth and bigint steps (AUTH_PROCEDURES not set)')
}

// RPCLink's `method: 'GET'` puts the envelope in ?data= (the server decodes it for any procedure,
// streams included); undefined input is an empty ?data=.
const getClient = createORPCClient(link({ method: 'GET' }))

await step('GET: ping {n:1} as ?data={"json":{"n":1}} returns {n:1}', async () => {
  assert.deepEqual(await withTimeout(getClient.ping({ n: 1 }), 5000, 'ping'), { n: 1 })
  const r = requests.to('/ping').at(-1)
  assert.equal(r.method, 'GET')
  assert.equal(new URLSearchParams(r.search).get('data'), '{"json":{"n":1}}')
  assert.equal(r.body, undefined)
  assert.equal(r.status, 200)
})

await step('GET: counter 1..2 streams with ids and returns {done:true}; failing with an empty ?data= errors', async () => {
  const it = await withTimeout(getClient.counter({ from: 1, to: 2, delayMs: 0 }), 5000, 'counter call')
  for (const n of [1, 2]) {
    const r = await next(it, `counter value ${n}`)
    assert.deepEqual(r, { done: false, value: { n } })
    assert.equal(getEventMeta(r.value)?.id, String(n))
  }
  assert.deepEqual(await next(it, 'counter return'), { done: true, value: { done: true } })
  assert.equal(requests.to('/counter').at(-1).method, 'GET')
  const failing = await withTimeout(getClient.failing(), 5000, 'failing call')
  assert.deepEqual(await next(failing, 'failing value'), { done: false, value: { n: 1 } })
  expectError(await thrown(failing.next(), 'failing error'), { code: 'BAD_REQUEST', status: 400, message: 'nope' })
  const r = requests.to('/failing').at(-1)
  assert.equal(r.method, 'GET')
  assert.equal(r.search, '?data=')
})

// The CSRF guard: a request whose sec-fetch-mode says it is not a fetch (a navigation, a form)
// is refused 403 before any procedure runs; `cors` (what fetch sends) passes, and so does a
// request without the header. Node's fetch always sends `sec-fetch-mode: cors`, whatever it is
// given, so this client's link fetches over node:http(s), which sends the headers as given.
const plainFetch = (url, init) =>
  new Promise((resolve, reject) => {
    const request = (url.startsWith('https:') ? https : http).request(
      url,
      { method: init.method, headers: Object.fromEntries(new Headers(init.headers)) },
      (res) => {
        const chunks = []
        res.on('data', (chunk) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () => {
          const headers = new Headers()
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of [value].flat()) headers.append(name, v)
          }
          resolve(new Response(chunks.length ? Buffer.concat(chunks) : null, { status: res.statusCode, headers }))
        })
      },
    )
    request.on('error', reject)
    request.end(init.body)
  })

await step('CSRF: sec-fetch-mode navigate is refused with ORPCError FORBIDDEN/403; cors, and none, pass', async () => {
  const as = (headers) =>
    createORPCClient(
      link({
        headers,
        fetch: (url, init) => requests.record(url, init.method, new Headers(init.headers), init.body, plainFetch(url, init)),
      }),
    )
  const err = await thrown(as({ 'sec-fetch-mode': 'navigate' }).ping({ n: 1 }), 'ping')
  expectError(err, { code: 'FORBIDDEN', status: 403, message: 'Request blocked by CSRF protection.' })
  assert.equal(requests.to('/ping').at(-1).status, 403)
  assert.deepEqual(await withTimeout(as({ 'sec-fetch-mode': 'cors' }).ping({ n: 2 }), 5000, 'ping'), { n: 2 })
  assert.deepEqual(await withTimeout(as({}).ping({ n: 3 }), 5000, 'ping'), { n: 3 })
})

// UNDEFINED_PROCEDURES: the v2 reference server's `nothing` (a unary call returning undefined)
// and `finite` (a stream yielding {n:1} and returning nothing); Outer's test serves them too.
if (UNDEFINED_PROCEDURES) {
  await step('nothing: a unary undefined is an empty 200 answer without content-type, the call gives undefined', async () => {
    assert.equal(await withTimeout(client.nothing(), 5000, 'nothing'), undefined)
    const r = requests.to('/nothing').at(-1)
    assert.equal(r.status, 200)
    assert.equal(r.answerType, null)
  })

  await step('finite: {n:1}, then the close event without data: the return value is undefined', async () => {
    const it = await withTimeout(client.finite(), 5000, 'finite call')
    assert.deepEqual(await next(it, 'finite value'), { done: false, value: { n: 1 } })
    assert.deepEqual(await next(it, 'finite return'), { done: true, value: undefined })
  })
} else {
  console.log('skip undefined returns (UNDEFINED_PROCEDURES not set)')
}

// The streams above ended by themselves (and the server's stream handlers with them, a moment
// after the client read the end): none is left once that moment has passed.
if (CLEANUP_URL) {
  await step('cleanup: every stream of the steps above was cleaned up on the server', async () => {
    await settled(CLEANUP_URL)
  })
}

console.log('orpc-v2: all checks passed')
process.exit(0)
