// Interop check: the real @orpc/client (RPCLink + ClientRetryPlugin) against a server that speaks
// oRPC's RPC protocol. Usage: node orpc.mjs <base>   e.g. node orpc.mjs http://127.0.0.1:3100/rpc
// Optional env: DROP_URL, CLEANUP_URL, AUTH_PROCEDURES (see README.md). Exits non-zero on the first
// failed check.
import assert from 'node:assert/strict'
import { createORPCClient, getEventMeta, ORPCError } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import { ClientRetryPlugin } from '@orpc/client/plugins'
import { check, fail, poll, postDrop, settled, sleep, step, withTimeout } from './lib.mjs'

const base = process.argv[2]
if (!base) fail('usage: node orpc.mjs <base url, e.g. http://127.0.0.1:3100/rpc>')
const { DROP_URL, CLEANUP_URL, AUTH_PROCEDURES } = process.env

// Every request the link makes goes through this fetch, so checks can see what was sent.
const requests = []
const countingFetch = (request, init) => {
  const url = new URL(request.url)
  requests.push({
    path: url.pathname,
    method: request.method,
    lastEventId: request.headers.get('last-event-id'),
    authorization: request.headers.get('authorization'),
  })
  return fetch(request, init)
}
const link = new RPCLink({
  url: base,
  fetch: countingFetch,
  // a call's context.token becomes its bearer token (the auth steps); other calls send none
  headers: ({ context }) => (context?.token ? { authorization: `Bearer ${context.token}` } : {}),
  // retry is opt-in per call (context.retry): a plain call must surface errors, not retry them
  plugins: [new ClientRetryPlugin({ default: { retry: 0 } })],
})
const client = createORPCClient(link)
const liveRequests = () => requests.filter((r) => r.path.endsWith('/post/live'))
const mentionRequests = () => requests.filter((r) => r.path.endsWith('/mentions/live'))

// Read the next value of an event iterator, failing clearly instead of hanging.
const next = (it, what, ms = 5000) => withTimeout(it.next(), ms, what)

await step('unary ping {n:1} returns {n:1}', async () => {
  assert.deepEqual(await withTimeout(client.ping({ n: 1 }), 5000, 'ping'), { n: 1 })
})

await step('unary post.create {title} returns {id:number, title}', async () => {
  const row = await withTimeout(client.post.create({ title: 'interop' }), 5000, 'post.create')
  assert.equal(typeof row.id, 'number')
  assert.equal(row.title, 'interop')
})

await step('failing: value {n:1}, then ORPCError BAD_REQUEST/400 "nope" data {why:"x"}', async () => {
  const it = await withTimeout(client.failing(), 5000, 'failing call')
  assert.deepEqual(await next(it, 'failing first value'), { done: false, value: { n: 1 } })
  const err = await next(it, 'failing error').then(
    (r) => assert.fail(`expected an error, got ${JSON.stringify(r)}`),
    (e) => e,
  )
  assert.ok(err instanceof ORPCError, `expected ORPCError, got ${err?.constructor?.name}: ${err}`)
  assert.equal(err.code, 'BAD_REQUEST')
  assert.equal(err.status, 400)
  assert.equal(err.message, 'nope')
  assert.deepEqual(err.data, { why: 'x' })
  assert.equal(err.defined, false)
})

await step('failing5xx: value {n:1}, then ORPCError INTERNAL_SERVER_ERROR/500 "boom"', async () => {
  const it = await withTimeout(client.failing5xx(), 5000, 'failing5xx call')
  assert.deepEqual(await next(it, 'failing5xx first value'), { done: false, value: { n: 1 } })
  const err = await next(it, 'failing5xx error').then(
    (r) => assert.fail(`expected an error, got ${JSON.stringify(r)}`),
    (e) => e,
  )
  assert.ok(err instanceof ORPCError, `expected ORPCError, got ${err?.constructor?.name}: ${err}`)
  assert.equal(err.code, 'INTERNAL_SERVER_ERROR')
  assert.equal(err.status, 500)
  assert.equal(err.message, 'boom')
})

await step('counter 1..3: values {n}, ids "1","2","3", retry 1000, return value {done:true}', async () => {
  const it = await withTimeout(client.counter({ from: 1, to: 3, delayMs: 10 }), 5000, 'counter call')
  for (const n of [1, 2, 3]) {
    const r = await next(it, `counter value ${n}`)
    assert.equal(r.done, false)
    assert.deepEqual(r.value, { n })
    // getEventMeta returns the raw SSE message ({event, data, id, retry, comments}): check id/retry
    const meta = getEventMeta(r.value)
    assert.equal(meta?.id, String(n))
    assert.equal(meta?.retry, 1000)
  }
  const end = await next(it, 'counter return')
  assert.deepEqual(end, { done: true, value: { done: true } })
})

await step('counter resumed with lastEventId "2" (last-event-id header): only {n:3}', async () => {
  const before = requests.length
  const it = await withTimeout(
    client.counter({ from: 1, to: 3, delayMs: 10 }, { lastEventId: '2' }),
    5000,
    'counter call',
  )
  assert.equal(requests[before].lastEventId, '2', 'client did not send last-event-id: 2')
  const got = []
  for (;;) {
    const r = await next(it, 'counter value')
    if (r.done) break
    got.push(r.value)
  }
  assert.deepEqual(got, [{ n: 3 }])
})

await step('post.live (retry 3) receives posts created while it reads, with their ids', async () => {
  const ac = new AbortController()
  const it = await withTimeout(
    client.post.live(undefined, { signal: ac.signal, context: { retry: 3 } }),
    5000,
    'post.live call',
  )
  await sleep(200) // let the server subscribe before publishing
  const a = await client.post.create({ title: 'live-a' })
  const b = await client.post.create({ title: 'live-b' })
  for (const row of [a, b]) {
    const r = await next(it, `live post ${row.id}`)
    assert.deepEqual(r.value, row)
    assert.equal(getEventMeta(r.value)?.id, String(row.id))
  }
  ac.abort()
})

if (DROP_URL) {
  await step('drop: after the server drops the stream, the client reconnects with last-event-id and misses nothing', async () => {
    const ac = new AbortController()
    const before = liveRequests().length
    const it = await withTimeout(
      client.post.live(undefined, { signal: ac.signal, context: { retry: 3 } }),
      5000,
      'post.live call',
    )
    await sleep(200)
    const a = await client.post.create({ title: 'drop-a' })
    assert.deepEqual((await next(it, 'post before drop')).value, a)
    await postDrop(DROP_URL)
    const b = await client.post.create({ title: 'drop-b' }) // created while disconnected
    // the retry plugin waits for the last event's retry (none here: 2000 ms) before reconnecting
    assert.deepEqual((await next(it, 'post created during the drop', 10000)).value, b)
    const c = await client.post.create({ title: 'drop-c' })
    assert.deepEqual((await next(it, 'post after reconnect', 10000)).value, c)
    const live = liveRequests().slice(before)
    assert.ok(live.length >= 2, `expected a reconnect, saw ${live.length} post.live request(s)`)
    assert.equal(live[1].lastEventId, String(a.id), 'reconnect did not carry last-event-id')
    ac.abort()
  })
} else {
  console.log('skip drop/reconnect (DROP_URL not set)')
}

// AUTH_PROCEDURES: the server has Outer's chat procedures behind a bearer token (`me`,
// `mentions.live`); the reference servers do not, so these steps run only when it is set.
if (AUTH_PROCEDURES) {
  // The call itself rejects: the 401 comes back as the HTTP status of the call, before any stream.
  const unauthorized = async (context) => {
    const before = mentionRequests().length
    const err = await withTimeout(client.mentions.live(undefined, { context }), 15000, 'mentions.live call').then(
      (it) => assert.fail(`expected the call to reject, it gave ${it?.constructor?.name}`),
      (e) => e,
    )
    assert.ok(err instanceof ORPCError, `expected ORPCError, got ${err?.constructor?.name}: ${err}`)
    assert.equal(err.code, 'UNAUTHORIZED')
    assert.equal(err.status, 401)
    // mentions.live declares UNAUTHORIZED (`.declares`), so it comes marked defined: what
    // oRPC's `isDefinedError` narrows on.
    assert.equal(err.defined, true)
    assert.equal(typeof err.message, 'string')
    const made = mentionRequests().slice(before)
    assert.ok(made.every((r) => r.authorization === null), 'a token was sent')
    return { err, requests: made.length }
  }

  await step('me: without a token ORPCError UNAUTHORIZED/401; with Bearer ann {name:"ann"}', async () => {
    const err = await withTimeout(client.me(), 5000, 'me').then(
      (r) => assert.fail(`expected an error, got ${JSON.stringify(r)}`),
      (e) => e,
    )
    assert.ok(err instanceof ORPCError, `expected ORPCError, got ${err?.constructor?.name}: ${err}`)
    assert.equal(err.code, 'UNAUTHORIZED')
    assert.equal(err.status, 401)
    assert.deepEqual(await withTimeout(client.me(undefined, { context: { token: 'ann' } }), 5000, 'me'), { name: 'ann' })
  })

  await step('mentions.live without a token: the call rejects with ORPCError UNAUTHORIZED/401, one request', async () => {
    assert.equal((await unauthorized({})).requests, 1)
  })

  // The retry plugin retries whatever error the call throws unless shouldRetry says otherwise:
  // with retry: 3 it makes 3 more requests for a 401, each refused the same way.
  await step('mentions.live without a token, retry 3: ClientRetryPlugin retries the 401 (4 requests, each 401)', async () => {
    const { requests: made } = await unauthorized({ retry: 3, retryDelay: 50 })
    assert.equal(made, 4)
  })

  // The status is what lets a client tell "refused" from "failed": a shouldRetry that
  // leaves 4xx alone gives up after one request.
  await step('mentions.live without a token, retry 3 with shouldRetry sparing 4xx: one request, no retry', async () => {
    const shouldRetry = ({ error }) => !(error instanceof ORPCError && error.status < 500)
    const { requests: made } = await unauthorized({ retry: 3, retryDelay: 50, shouldRetry })
    assert.equal(made, 1)
  })

  await step('mentions.live with authorization: Bearer ann receives a post titled "hi @ann", not one for @bob', async () => {
    const ac = new AbortController()
    const before = mentionRequests().length
    const it = await withTimeout(
      client.mentions.live(undefined, { signal: ac.signal, context: { token: 'ann' } }),
      5000,
      'mentions.live call',
    )
    assert.equal(mentionRequests()[before]?.authorization, 'Bearer ann')
    await sleep(200) // let the server subscribe before publishing
    await client.post.create({ title: 'hi @bob' })
    const ann = await client.post.create({ title: 'hi @ann' })
    const r = await next(it, 'the mention of @ann')
    assert.equal(r.done, false)
    assert.deepEqual(r.value, ann)
    assert.equal(getEventMeta(r.value)?.id, String(ann.id))
    ac.abort()
    await it.return?.().catch(() => {})
  })
} else {
  console.log('skip auth steps (AUTH_PROCEDURES not set)')
}

await step('abort: aborting a post.live call ends the client iterator', async () => {
  const ac = new AbortController()
  const baseline = CLEANUP_URL ? await settled(CLEANUP_URL) : undefined
  const it = await withTimeout(client.post.live(undefined, { signal: ac.signal }), 5000, 'post.live call')
  if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline + 1, 'server sees the open stream')
  const pending = it.next()
  ac.abort()
  const outcome = await withTimeout(
    pending.then(
      (r) => `returned ${JSON.stringify(r)}`,
      (e) => `threw ${e?.name}`,
    ),
    3000,
    'iterator end after abort',
  )
  assert.ok(/AbortError|"done":true/.test(outcome), `unexpected end after abort: ${outcome}`)
  check(`abort observed: iterator ${outcome}`)
  if (CLEANUP_URL) await poll(CLEANUP_URL, (n) => n === baseline, 'server cleaned the stream up')
})
if (!CLEANUP_URL) console.log('skip server-side cleanup observation (CLEANUP_URL not set)')

console.log('orpc: all checks passed')
process.exit(0)
