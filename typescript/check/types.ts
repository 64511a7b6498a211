// The types the real clients give each procedure through the golden modules, compared by
// structure with check/shapes.ts (a stray `any`, a widened or a missing field fails here).
import type { AsyncIteratorClass, ContractRouterClient, InferContractRouterInputs, InferContractRouterOutputs } from '@orpc/contract'
import type { TRPCClient } from '@trpc/client'
import type { inferRouterError, inferRouterInputs, inferRouterOutputs, TRPCDefaultErrorShape } from '@trpc/server'
import type { contract } from '../golden/orpc.js'
import type { AppRouter } from '../golden/trpc.js'
import type { Equal, Expect, Same } from './expect.js'
import type { CounterInput, Finished, NewPost, Ping, Pong, Post, Resume, Tick, Tracked, User } from './shapes.js'

// oRPC: what each call takes and resolves to; a stream resolves to an AsyncIteratorClass.
type O = ContractRouterClient<typeof contract>
type In = InferContractRouterInputs<typeof contract>
type Out = InferContractRouterOutputs<typeof contract>
type Stream<T> = T extends AsyncIteratorClass<infer Event, infer Return, void> ? { event: Event, return: Return } : 'not a stream'
export type OrpcSpec = [
  Expect<Same<In['ping'], Ping>>,
  Expect<Same<Out['ping'], Pong>>,
  Expect<Same<In['post']['create'], NewPost>>,
  Expect<Same<Out['post']['create'], Post>>,
  Expect<Same<In['post']['live'], void>>,
  Expect<Same<Stream<Out['post']['live']>, { event: Post, return: null }>>,
  Expect<Same<In['counter'], CounterInput>>,
  Expect<Same<Stream<Out['counter']>, { event: Tick, return: Finished }>>,
  Expect<Same<In['failing'], void>>,
  Expect<Same<Stream<Out['failing']>, { event: Tick, return: null }>>,
  Expect<Same<In['failing5xx'], void>>,
  Expect<Same<Stream<Out['failing5xx']>, { event: Tick, return: null }>>,
  Expect<Same<In['me'], void>>,
  Expect<Same<Out['me'], User>>,
  Expect<Same<In['mentions']['live'], void>>,
  Expect<Same<Stream<Out['mentions']['live']>, { event: Post, return: null }>>,
  // a procedure without input is called with none (or undefined), never with a value
  Expect<Equal<Parameters<O['me']>[0], void | undefined>>,
  // the errors a procedure declares are typed: see check/errors-generated.ts
]

// tRPC: inputs as the client takes them, outputs as it gets them.
type TIn = inferRouterInputs<AppRouter>
type TOut = inferRouterOutputs<AppRouter>
type T = TRPCClient<AppRouter>
/** What `for await` over `.subscribe(input)` yields. */
type Yield<F> = F extends (...args: any[]) => infer R ? R extends AsyncIterableIterator<infer Y> ? Y : never : never
export type TrpcSpec = [
  Expect<Same<TIn['ping'], Ping>>,
  Expect<Same<TOut['ping'], Pong>>,
  Expect<Same<TIn['post']['create'], NewPost>>,
  Expect<Same<TOut['post']['create'], Post>>,
  Expect<Same<TIn['post']['live'], void | Resume>>,
  Expect<Same<Yield<T['post']['live']['subscribe']>, Tracked<Post>>>,
  Expect<Same<TIn['counter'], CounterInput & Resume>>,
  Expect<Same<Yield<T['counter']['subscribe']>, Tracked<Tick>>>,
  // An event_iterator not declared `.tracked()` may send events with or without ids: a union.
  Expect<Same<TIn['failing'], void | Resume>>,
  Expect<Same<Yield<T['failing']['subscribe']>, Tick | Tracked<Tick>>>,
  Expect<Same<TIn['failing5xx'], void | Resume>>,
  Expect<Same<Yield<T['failing5xx']['subscribe']>, Tick | Tracked<Tick>>>,
  Expect<Same<TIn['me'], void>>,
  Expect<Same<TOut['me'], User>>,
  Expect<Same<TIn['mentions']['live'], void | Resume>>,
  Expect<Same<Yield<T['mentions']['live']['subscribe']>, Tracked<Post>>>,
  // the error shape the client types its errors with: tRPC's default, which Outer sends
  Expect<Equal<inferRouterError<AppRouter>, TRPCDefaultErrorShape>>,
]

// What `.subscribe(input, { onData })` passes to onData (an overloaded method: checked by a call).
export function onDataSpec(trpc: T): void {
  trpc.post.live.subscribe(undefined, { onData: (event) => { type _ = Expect<Same<typeof event, Tracked<Post>>> } })
  trpc.counter.subscribe({ from: 1, to: 3, delayMs: 0 }, { onData: (event) => { type _ = Expect<Same<typeof event, Tracked<Tick>>> } })
  trpc.failing.subscribe(undefined, { onData: (tick) => { type _ = Expect<Same<typeof tick, Tick | Tracked<Tick>>> } })
  trpc.failing5xx.subscribe(undefined, { onData: (tick) => { type _ = Expect<Same<typeof tick, Tick | Tracked<Tick>>> } })
  trpc.mentions.live.subscribe(undefined, { onData: (event) => { type _ = Expect<Same<typeof event, Tracked<Post>>> } })
}
