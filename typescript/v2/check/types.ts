// The types oRPC 2 gives each procedure through the golden contract, compared by structure with
// ../check/shapes.ts: the same list as ../check/types.ts's OrpcSpec, with v2's names
// (`RouterContractClient`, `InferRouterContract{Inputs,Outputs,Errors}`).
import type { AnyORPCError, AsyncIteratorClass, ORPCError, ThrowableError } from '@orpc/client'
import type {
  InferRouterContractErrors,
  InferRouterContractInputs,
  InferRouterContractOutputs,
  RouterContractClient,
} from '@orpc/contract'
import type { contract } from '../golden/orpc.js'
import type { Equal, Expect, Same } from '../../check/expect.js'
import type { CounterInput, Finished, Gap, NewPost, Ping, Pong, Post, Tick, User } from '../../check/shapes.js'

type O = RouterContractClient<typeof contract>
type In = InferRouterContractInputs<typeof contract>
type Out = InferRouterContractOutputs<typeof contract>
type Errors = InferRouterContractErrors<typeof contract>
type Stream<T> = T extends AsyncIteratorClass<infer Event, infer Return, void> ? { event: Event, return: Return } : 'not a stream'
/** What a call resolves to, from the client itself (not the contract). */
type Result<F> = F extends (...args: any[]) => Promise<infer R> ? R : 'not a call'
/** The typed (inferable) errors of a procedure. */
type Declared<E> = Extract<E, AnyORPCError>

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
  // the client's calls resolve to the contract's outputs
  Expect<Same<Result<O['ping']>, Pong>>,
  Expect<Same<Result<O['post']['create']>, Post>>,
  Expect<Same<Stream<Result<O['counter']>>, { event: Tick, return: Finished }>>,
  Expect<Same<Stream<Result<O['mentions']['live']>>, { event: Post, return: null }>>,
  // a procedure without input is called with none (or undefined), never with a value
  Expect<Equal<Parameters<O['me']>[0], void | undefined>>,
  // errors: the declared ones typed by code and data, and anything else a plain Error
  Expect<Equal<Errors['ping'], ThrowableError>>,
  Expect<Equal<Declared<Errors['me']>, ORPCError<'UNAUTHORIZED', unknown>>>,
  Expect<Equal<Exclude<Errors['me'], AnyORPCError>, Error>>,
  Expect<Same<Declared<Errors['post']['live']>, ORPCError<'PRECONDITION_FAILED', Gap>>>,
  Expect<Same<Declared<Errors['mentions']['live']>, ORPCError<'UNAUTHORIZED', unknown> | ORPCError<'PRECONDITION_FAILED', Gap>>>,
]
