// Every procedure of the chat, called through the real oRPC 2 client typed by the golden contract.
// It compiles only if the golden types are right under oRPC 2, and when run against a chat server
// (`node ../check/run-use.mjs --project v2`) it checks that the values the client receives at
// `/rpc2` are what the types say: ../check/use.ts's oRPC part, with v2's API.
import { consumeEventIterator, createORPCClient, getEventMeta, isDefinedError, ORPCError, safe } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import type { RouterContractClient } from '@orpc/contract'
import type { contract } from '../golden/orpc.js'
import { expect, same, sleep, within, type Equal, type Expect, type Same } from '../../check/expect.js'
import type { Finished, Gap, Post, Tick, User } from '../../check/shapes.js'

export type OrpcClient = RouterContractClient<typeof contract>

/** What check/run-use.mjs runs against a chat at `base` (`http://HOST:PORT`). */
export const protocols = [
  { name: 'orpc v2', golden: 'golden/orpc.ts (oRPC 2)', path: '/rpc2', run: orpcChecks },
]

/** Calls every procedure over oRPC 2 at `origin` + `/rpc2`. */
export async function orpcChecks(origin: string): Promise<void> {
  // v2's link takes the origin and the path apart
  const client: OrpcClient = createORPCClient(new RPCLink({ origin, url: '/rpc2' }))
  const ann: OrpcClient = createORPCClient(new RPCLink({ origin, url: '/rpc2', headers: { authorization: 'Bearer ann' } }))

  // ping: {n} -> {n}
  const pong = await client.ping({ n: 1 })
  const n: number = pong.n
  same(n, 1, 'orpc2 ping')

  // post.create: {title} -> Post
  const created = await client.post.create({ title: 'typed' })
  type _created = Expect<Same<typeof created, Post>>
  same(created.title, 'typed', 'orpc2 post.create')

  // post.live: an event iterator of Posts, each with its id as the event's id; returns null
  const live = await client.post.live()
  await sleep(100) // let the server subscribe before publishing
  const posted = await client.post.create({ title: 'live' })
  const first = await within(5000, 'orpc2 post.live', live.next())
  expect(!first.done, 'orpc2 post.live yields a post')
  const post: Post = first.value
  const title: string = post.title
  const eventId: string | undefined = getEventMeta(post)?.id
  same([title, post.id, eventId], ['live', posted.id, String(posted.id)], 'orpc2 post.live event')
  await live.return()

  // counter: events {n} with ids, then the return value {done}
  const counter = await client.counter({ from: 1, to: 3, delayMs: 0 })
  const ticks: number[] = []
  const ids: (string | undefined)[] = []
  let step = await within(5000, 'orpc2 counter', counter.next())
  while (!step.done) {
    const tick: Tick = step.value
    ticks.push(tick.n)
    ids.push(getEventMeta(tick)?.id)
    step = await within(5000, 'orpc2 counter', counter.next())
  }
  const finished: Finished = step.value
  const done: boolean = finished.done
  same([ticks, ids, done], [[1, 2, 3], ['1', '2', '3'], true], 'orpc2 counter')

  // counter through for-await: the events alone
  const sum = { n: 0 }
  for await (const tick of await client.counter({ from: 1, to: 2, delayMs: 0 })) sum.n += tick.n
  same(sum.n, 3, 'orpc2 counter for-await')

  // failing, failing5xx: {n: 1}, then an error the iterator throws: undeclared, so not inferable
  for (const [call, code] of [[client.failing, 'BAD_REQUEST'], [client.failing5xx, 'INTERNAL_SERVER_ERROR']] as const) {
    const failing = await call()
    const one = await within(5000, 'orpc2 failing', failing.next())
    expect(!one.done, 'orpc2 failing yields')
    same(one.value.n, 1, 'orpc2 failing event')
    const error: unknown = await failing.next().then(() => undefined, (error: unknown) => error)
    expect(error instanceof ORPCError, 'orpc2 failing throws an ORPCError')
    const errorCode: string = error.code
    same([errorCode, error.defined, error.inferable], [code, false, false], 'orpc2 failing error')
  }

  // me: needs a signed-in caller; without one, the UNAUTHORIZED it declares, typed
  const me: User = await ann.me()
  same(me.name, 'ann', 'orpc2 me')
  const [anonymous, nobody, refused, isSuccess] = await within(5000, 'orpc2 me', safe(client.me()))
  expect(!isSuccess && refused !== null, `orpc2 me without a token is a declared error: ${String(anonymous)}`)
  type _refused = Expect<Equal<typeof refused, ORPCError<'UNAUTHORIZED', unknown>>>
  const refusedCode: 'UNAUTHORIZED' = refused.code
  same([refusedCode, refused.defined, refused.inferable, anonymous === refused, nobody], ['UNAUTHORIZED', true, true, true, undefined], 'orpc2 me error')

  // mentions.live: the posts that name the caller
  const mentions = await ann.mentions.live()
  await sleep(100)
  await client.post.create({ title: 'hi @bob' })
  const mention = await client.post.create({ title: 'hi @ann' })
  const named = await within(5000, 'orpc2 mentions.live', mentions.next())
  expect(!named.done, 'orpc2 mentions.live yields')
  same([named.value, getEventMeta(named.value)?.id], [mention, String(mention.id)], 'orpc2 mentions.live')
  await mentions.return()

  // post.live resumed after an id the chat never gave: the gap it declares (PRECONDITION_FAILED
  // with GapData), typed through consumeEventIterator's onError
  const ahead = String(mention.id + 1000)
  const gap = await within(5000, 'orpc2 post.live gap', new Promise<Gap>((resolve, reject) => {
    const stop = consumeEventIterator(client.post.live(undefined, { lastEventId: ahead }), {
      onEvent: (post) => {
        reject(new Error(`post.live resumed from ${ahead}: got post ${post.id}`))
        void stop()
      },
      onError: (failure) => {
        if (isDefinedError(failure)) {
          type _ = Expect<Same<typeof failure, ORPCError<'PRECONDITION_FAILED', Gap>>>
          resolve(failure.data)
        } else {
          reject(failure)
        }
      },
      onSuccess: (value) => reject(new Error(`post.live from ${ahead} ended without a gap: ${String(value)}`)),
    })
  }))
  const gapKind: 'expired' | 'unknown' | 'lagged' = gap.gap
  const next: string | null = gap.nextEventId
  same([gapKind, gap.lastEventId, typeof next, gap.missed], ['unknown', ahead, 'string', null], 'orpc2 post.live gap')
}
