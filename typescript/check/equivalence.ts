// The golden AppRouter against a router tRPC itself builds for the same procedures
// (`initTRPC`, `tracked`, async generators, as in README's tRPC reference): a client of either
// has the same types. Only type-checked: nothing here runs.
import { initTRPC, tracked, TRPCError } from '@trpc/server'
import type { TRPCClient } from '@trpc/client'
import type { inferRouterInputs, inferRouterOutputs, inferRouterError, TrackedEnvelope } from '@trpc/server'
import type { AppRouter } from '../golden/trpc.js'
import type { Expect, Same } from './expect.js'
import type { CounterInput, NewPost, Ping, Post, Resume, Tick, User } from './shapes.js'

const t = initTRPC.create()
const as = <T>() => (input: unknown) => input as T
declare const posts: AsyncIterable<Post>

const real = t.router({
  ping: t.procedure.input(as<Ping>()).query(({ input }) => ({ n: input.n })),
  post: t.router({
    create: t.procedure.input(as<NewPost>()).mutation(({ input }): Post => ({ id: 1, title: input.title })),
    live: t.procedure.input(as<Resume | undefined>()).subscription(async function* () {
      for await (const post of posts) yield tracked(String(post.id), post)
    }),
  }),
  counter: t.procedure.input(as<CounterInput & Resume>()).subscription(async function* ({ input }) {
    for (let n = input.from; n <= input.to; n++) yield tracked(String(n), { n } as Tick)
  }),
  // Outer cannot tell that an event_iterator sends no ids (it is not declared `.tracked()`), so
  // its events are typed with or without one: the same as a tRPC generator that may yield either.
  failing: t.procedure.input(as<Resume | void>()).subscription(async function* (): AsyncGenerator<Tick | TrackedEnvelope<Tick>, void> {
    yield { n: 1 } as Tick
    throw new TRPCError({ code: 'BAD_REQUEST', message: 'nope' })
  }),
  // Outer cannot tell that an event_iterator sends no ids (it is not declared `.tracked()`), so
  // its events are typed with or without one: the same as a tRPC generator that may yield either.
  failing5xx: t.procedure.input(as<Resume | void>()).subscription(async function* (): AsyncGenerator<Tick | TrackedEnvelope<Tick>, void> {
    yield { n: 1 } as Tick
    throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'boom' })
  }),
  me: t.procedure.query((): User => ({ name: 'ann' })),
  mentions: t.router({
    live: t.procedure.input(as<Resume | undefined>()).subscription(async function* () {
      for await (const post of posts) yield tracked(String(post.id), post)
    }),
  }),
})
type Real = typeof real

type Yield<F> = F extends (...args: any[]) => infer R ? R extends AsyncIterableIterator<infer Y> ? Y : never : never
type Golden = TRPCClient<AppRouter>
type Built = TRPCClient<Real>

export type Equivalent = [
  Expect<Same<inferRouterError<AppRouter>, inferRouterError<Real>>>,
  Expect<Same<inferRouterInputs<AppRouter>['ping'], inferRouterInputs<Real>['ping']>>,
  Expect<Same<inferRouterOutputs<AppRouter>['ping'], inferRouterOutputs<Real>['ping']>>,
  Expect<Same<inferRouterInputs<AppRouter>['post']['create'], inferRouterInputs<Real>['post']['create']>>,
  Expect<Same<inferRouterOutputs<AppRouter>['post']['create'], inferRouterOutputs<Real>['post']['create']>>,
  Expect<Same<Parameters<Golden['post']['live']['subscribe']>[0], Parameters<Built['post']['live']['subscribe']>[0]>>,
  Expect<Same<Yield<Golden['post']['live']['subscribe']>, Yield<Built['post']['live']['subscribe']>>>,
  Expect<Same<Parameters<Golden['counter']['subscribe']>[0], Parameters<Built['counter']['subscribe']>[0]>>,
  Expect<Same<Yield<Golden['counter']['subscribe']>, Yield<Built['counter']['subscribe']>>>,
  Expect<Same<Parameters<Golden['failing']['subscribe']>[0], Parameters<Built['failing']['subscribe']>[0]>>,
  Expect<Same<Yield<Golden['failing']['subscribe']>, Yield<Built['failing']['subscribe']>>>,
  Expect<Same<Yield<Golden['failing5xx']['subscribe']>, Yield<Built['failing5xx']['subscribe']>>>,
  Expect<Same<Parameters<Golden['me']['query']>, Parameters<Built['me']['query']>>>,
  Expect<Same<Awaited<ReturnType<Golden['me']['query']>>, Awaited<ReturnType<Built['me']['query']>>>>,
  Expect<Same<Parameters<Golden['mentions']['live']['subscribe']>[0], Parameters<Built['mentions']['live']['subscribe']>[0]>>,
  Expect<Same<Yield<Golden['mentions']['live']['subscribe']>, Yield<Built['mentions']['live']['subscribe']>>>,
]

// Either router types a client the other's client code compiles against.
export const asReal = (client: Golden): Built => client
export const asGolden = (client: Built): Golden => client
