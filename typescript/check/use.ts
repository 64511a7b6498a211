// Every procedure of the chat, called through the real clients typed by the golden modules. It
// compiles only if the golden types are right (`tsc -p .`), and when run against a chat server
// (check/run-use.mjs) it checks that the values the clients receive are what the types say.
import { createORPCClient, getEventMeta, ORPCError } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import type { ContractRouterClient } from '@orpc/contract'
import {
  createTRPCClient,
  httpBatchLink,
  httpSubscriptionLink,
  isTRPCClientError,
  splitLink,
  TRPCClientError,
} from '@trpc/client'
import { EventSource } from 'eventsource'
import type { contract } from '../golden/orpc.js'
import type { AppRouter } from '../golden/trpc.js'
import { expect, same, sleep, within, type Expect, type Same } from './expect.js'
import type { Finished, Post, Tick, Tracked, User } from './shapes.js'

export type OrpcClient = ContractRouterClient<typeof contract>

/** What check/run-use.mjs runs against a chat at `base` (`http://HOST:PORT`). */
export const protocols = [
  { name: 'orpc', golden: 'golden/orpc.ts', path: '/rpc', run: (base: string) => orpcChecks(`${base}/rpc`) },
  { name: 'trpc', golden: 'golden/trpc.ts', path: '/trpc', run: (base: string) => trpcChecks(`${base}/trpc`) },
]

/** Calls every procedure over oRPC at `url` (the `/rpc` prefix). */
export async function orpcChecks(url: string): Promise<void> {
  const client: OrpcClient = createORPCClient(new RPCLink({ url }))
  const ann: OrpcClient = createORPCClient(new RPCLink({ url, headers: { authorization: 'Bearer ann' } }))

  // ping: {n} -> {n}
  const pong = await client.ping({ n: 1 })
  const n: number = pong.n
  same(n, 1, 'orpc ping')

  // post.create: {title} -> Post
  const created = await client.post.create({ title: 'typed' })
  type _created = Expect<Same<typeof created, Post>>
  const createdId: number = created.id
  same(created.title, 'typed', 'orpc post.create')

  // post.live: an event iterator of Posts, each with its id as the event's id; returns null
  const live = await client.post.live()
  await sleep(100) // let the server subscribe before publishing
  const posted = await client.post.create({ title: 'live' })
  const first = await within(5000, 'orpc post.live', live.next())
  expect(!first.done, 'orpc post.live yields a post')
  const post: Post = first.value
  const title: string = post.title
  const eventId: string | undefined = getEventMeta(post)?.id
  same([title, post.id, eventId], ['live', posted.id, String(posted.id)], 'orpc post.live event')
  await live.return()

  // counter: events {n} with ids, then the return value {done}
  const counter = await client.counter({ from: 1, to: 3, delayMs: 0 })
  const ticks: number[] = []
  const ids: (string | undefined)[] = []
  let step = await within(5000, 'orpc counter', counter.next())
  while (!step.done) {
    const tick: Tick = step.value
    ticks.push(tick.n)
    ids.push(getEventMeta(tick)?.id)
    step = await within(5000, 'orpc counter', counter.next())
  }
  const finished: Finished = step.value
  const done: boolean = finished.done
  same([ticks, ids, done], [[1, 2, 3], ['1', '2', '3'], true], 'orpc counter')

  // counter through for-await: the events alone
  const sum = { n: 0 }
  for await (const tick of await client.counter({ from: 1, to: 2, delayMs: 0 })) sum.n += tick.n
  same(sum.n, 3, 'orpc counter for-await')

  // failing, failing5xx: {n: 1}, then an error the iterator throws
  for (const [call, code] of [[client.failing, 'BAD_REQUEST'], [client.failing5xx, 'INTERNAL_SERVER_ERROR']] as const) {
    const failing = await call()
    const one = await within(5000, 'orpc failing', failing.next())
    expect(!one.done, 'orpc failing yields')
    same(one.value.n, 1, 'orpc failing event')
    const error: unknown = await failing.next().then(() => undefined, (error: unknown) => error)
    expect(error instanceof ORPCError, 'orpc failing throws an ORPCError')
    const errorCode: string = error.code
    same(errorCode, code, 'orpc failing error code')
  }

  // me: needs a signed-in caller
  const me: User = await ann.me()
  same(me.name, 'ann', 'orpc me')
  const anonymous = await client.me().then(() => undefined, (error: unknown) => error)
  expect(anonymous instanceof ORPCError && anonymous.status === 401, 'orpc me without a token is 401')

  // mentions.live: the posts that name the caller
  const mentions = await ann.mentions.live()
  await sleep(100)
  await client.post.create({ title: 'hi @bob' })
  const mention = await client.post.create({ title: 'hi @ann' })
  const named = await within(5000, 'orpc mentions.live', mentions.next())
  expect(!named.done, 'orpc mentions.live yields')
  same([named.value, getEventMeta(named.value)?.id], [mention, String(mention.id)], 'orpc mentions.live')
  await mentions.return()
  void createdId
}

/** Calls every procedure over tRPC at `url` (the `/trpc` base). */
export async function trpcChecks(url: string): Promise<void> {
  const links = (token?: string) => [
    splitLink({
      condition: (op) => op.type === 'subscription',
      true: httpSubscriptionLink({
        url,
        EventSource,
        // an EventSource sends no headers of its own: the token goes through its fetch
        eventSourceOptions: {
          fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...bearer(token) } }),
        },
      }),
      false: httpBatchLink({ url, headers: bearer(token) }),
    }),
  ]
  const trpc = createTRPCClient<AppRouter>({ links: links() })
  const ann = createTRPCClient<AppRouter>({ links: links('ann') })

  // ping (query): {n} -> {n}
  const pong = await trpc.ping.query({ n: 1 })
  const n: number = pong.n
  same(n, 1, 'trpc ping')

  // post.create (mutation): {title} -> Post
  const created = await trpc.post.create.mutate({ title: 'typed' })
  const createdId: number = created.id
  same(created.title, 'typed', 'trpc post.create')

  // post.live (subscription, tracked): onData gets {id, data}
  const live: Tracked<Post>[] = []
  const liveSub = trpc.post.live.subscribe(undefined, {
    onData: (event) => {
      const id: string = event.id
      const title: string = event.data.title
      const postId: number = event.data.id
      live.push({ id, data: { id: postId, title } })
    },
  })
  await sleep(200)
  const posted = await trpc.post.create.mutate({ title: 'live' })
  await within(5000, 'trpc post.live', until(() => live.length >= 1))
  liveSub.unsubscribe()
  same(live, [{ id: String(posted.id), data: posted }], 'trpc post.live')

  // post.live resumed after an id: the posts after it, as tracked events
  const resumed: Tracked<Post>[] = []
  const resumeSub = trpc.post.live.subscribe({ lastEventId: String(created.id) }, {
    onData: (event) => resumed.push(event),
  })
  await within(5000, 'trpc post.live resumed', until(() => resumed.length >= 1))
  resumeSub.unsubscribe()
  same(resumed[0]?.data.id, created.id + 1, 'trpc post.live resumed after lastEventId')

  // counter (subscription, tracked) as an async iterator: {id, data: {n}}; tRPC drops the return value
  const counted: Tracked<Tick>[] = []
  for await (const event of trpc.counter.subscribe({ from: 1, to: 3, delayMs: 0 })) {
    type _event = Expect<Same<typeof event, { id: string, data: { n: number } }>>
    counted.push(event)
    if (counted.length === 3) break
  }
  same(counted, [1, 2, 3].map((n) => ({ id: String(n), data: { n } })), 'trpc counter')

  // counter resumed after "2", the id in the input
  const after: number[] = []
  const counterSub = trpc.counter.subscribe({ from: 1, to: 3, delayMs: 0, lastEventId: '2' }, {
    onData: (event) => after.push(event.data.n),
  })
  await within(5000, 'trpc counter resumed', until(() => after.length >= 1))
  await sleep(100)
  counterSub.unsubscribe()
  same(after, [3], 'trpc counter resumed')

  // failing, failing5xx (untracked): onData gets the event itself, then onError
  for (const [sub, code] of [[trpc.failing, 'BAD_REQUEST'], [trpc.failing5xx, 'INTERNAL_SERVER_ERROR']] as const) {
    const seen: number[] = []
    const errors: string[] = []
    const failing = sub.subscribe(undefined, {
      onData: (tick) => {
        // Not declared `.tracked()` on the server: an event may come with an id or without.
        const value: number = 'data' in tick ? tick.data.n : tick.n
        seen.push(value)
      },
      onError: (error) => {
        const typed: TRPCClientError<AppRouter> = error
        errors.push(typed.data?.code ?? '?')
      },
    })
    if (code === 'BAD_REQUEST') {
      await within(5000, 'trpc failing', until(() => errors.length >= 1))
      same([seen, errors], [[1], [code]], 'trpc failing')
    } else {
      // a 5xx is retryable: the EventSource reconnects rather than reporting it
      await within(5000, 'trpc failing5xx', until(() => seen.length >= 1))
      same(seen[0], 1, 'trpc failing5xx event')
    }
    failing.unsubscribe()
  }

  // me (query): a signed-in caller's name; a typed error for an anonymous one
  const me: User = await ann.me.query()
  same(me.name, 'ann', 'trpc me')
  const anonymous: unknown = await trpc.me.query().then(() => undefined, (error: unknown) => error)
  expect(isTRPCClientError<AppRouter>(anonymous), 'trpc me without a token fails')
  const status: number | undefined = anonymous.data?.httpStatus
  same([anonymous.data?.code, status], ['UNAUTHORIZED', 401], 'trpc me error')

  // mentions.live (subscription, tracked)
  const mentions: Tracked<Post>[] = []
  const mentionSub = ann.mentions.live.subscribe(undefined, { onData: (event) => mentions.push(event) })
  await sleep(200)
  await trpc.post.create.mutate({ title: 'hi @bob' })
  const mention = await trpc.post.create.mutate({ title: 'hi @ann' })
  await within(5000, 'trpc mentions.live', until(() => mentions.length >= 1))
  mentionSub.unsubscribe()
  same(mentions, [{ id: String(mention.id), data: mention }], 'trpc mentions.live')
  void createdId
}

function bearer(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {}
}

async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await sleep(10)
}
