// The oRPC v2 reference server: the same procedures as the v1 reference
// (/work/shared/reference/orpc/server.mjs), on @orpc/server 2.x. v2 dropped `EventPublisher`
// from `@orpc/server`, so a minimal one is written out below with the same behaviour the v1
// reference relied on (deliver to current subscribers, no history, end on abort).
import { createServer } from 'node:http'
import { os, ORPCError, withEventMeta } from '@orpc/server'
import { RPCHandler } from '@orpc/server/node'
import { z } from 'zod'

function subscribe(subscribers, signal) {
  const queue = []
  let wake
  const push = (value) => { queue.push(value); wake?.() }
  subscribers.add(push)
  const stop = () => { subscribers.delete(push); wake?.() }
  signal?.addEventListener('abort', stop, { once: true })
  return (async function* () {
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) await new Promise(r => { wake = r })
        wake = undefined
        while (queue.length > 0) yield queue.shift()
      }
    } finally { stop() }
  })()
}
const created = new Set()
const publish = (row) => { for (const push of created) push(row) }
const rows = []
const router = {
  ping: os.input(z.object({ n: z.number() })).handler(({ input }) => ({ n: input.n })),
  post: {
    create: os.input(z.object({ title: z.string() })).handler(({ input }) => { const row = { id: rows.length + 1, title: input.title }; rows.push(row); publish(row); return row }),
    live: os.handler(async function* ({ signal, lastEventId }) {
      const it = subscribe(created, signal)
      if (lastEventId) for (const r of rows.filter(r => r.id > Number(lastEventId))) yield withEventMeta(r, { id: String(r.id) })
      for await (const p of it) yield withEventMeta(p, { id: String(p.id) })
    }),
  },
  counter: os.input(z.object({ from: z.number(), to: z.number(), delayMs: z.number() })).handler(async function* ({ input, lastEventId }) {
    let i = lastEventId ? Number(lastEventId) + 1 : input.from
    for (; i <= input.to; i++) { yield withEventMeta({ n: i }, { id: String(i), retry: 1000 }); await new Promise(r => setTimeout(r, input.delayMs)) }
    return { done: true }
  }),
  failing: os.handler(async function* () { yield { n: 1 }; throw new ORPCError('BAD_REQUEST', { message: 'nope', data: { why: 'x' } }) }),
  failing5xx: os.handler(async function* () { yield { n: 1 }; throw new ORPCError('INTERNAL_SERVER_ERROR', { message: 'boom' }) }),
  // Not in the v1 reference, to capture how v2 writes JavaScript's `undefined`: a stream that
  // returns nothing (its `close` event)...
  finite: os.handler(async function* () { yield { n: 1 } }),
  // ... and a unary procedure that returns nothing.
  nothing: os.handler(() => undefined),
}
const handler = new RPCHandler(router)
createServer(async (req, res) => {
  const { matched } = await handler.handle(req, res, { prefix: '/rpc', context: {} })
  if (!matched) { res.writeHead(404, { 'content-type': 'application/json' }); res.end(JSON.stringify({ json: { defined: false, inferable: false, code: 'NOT_FOUND', message: 'Not Found' } })) }
}).listen(Number(process.env.PORT || 3101), '127.0.0.1')
