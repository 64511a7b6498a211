// Typed errors (issue 16, item 3): what each real client can type about a procedure's errors,
// shown on variants of the chat's procedures that declare theirs. Only type-checked: the golden
// modules declare no errors yet.
import { consumeEventIterator, createORPCClient, isDefinedError, ORPCError, safe } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'
import { eventIterator, oc, type, type ContractRouterClient } from '@orpc/contract'
import { createTRPCClient, httpBatchLink, safe as trpcSafe, TRPCClientError } from '@trpc/client'
import type {
  TRPCBuiltRouter,
  TRPCDefaultErrorShape,
  TRPCQueryProcedure,
  TRPCSubscriptionProcedure,
} from '@trpc/server'
import type { Tick, User } from './shapes.js'
import type { Equal, Expect } from './expect.js'

// oRPC: `.errors({ CODE: { data: schema } })` types the errors a procedure declares. The client
// gets them as `ORPCError<'CODE', Data>` where the server sent `defined: true`; every other error
// stays untyped (`Error`). `isDefinedError` narrows, `safe` returns `[error, data, isDefined]`.
export type Unauthorized = { reason: string, };
export type Refused = { why: string, };

export const contract = {
  me: oc
    .errors({ UNAUTHORIZED: { data: type<Unauthorized>() } })
    .input(type<void>())
    .output(type<User>()),
  failing: oc
    .errors({ BAD_REQUEST: { data: type<Refused>() } })
    .input(type<void>())
    .output(eventIterator(type<Tick>(), type<null>())),
}

export async function orpcTypedErrors(url: string): Promise<string[]> {
  const client: ContractRouterClient<typeof contract> = createORPCClient(new RPCLink({ url }))
  const seen: string[] = []

  // a unary call: `safe` keeps the error type
  const [error, me, isDefined] = await safe(client.me())
  if (isDefined) {
    type _ = Expect<Equal<typeof error, ORPCError<'UNAUTHORIZED', Unauthorized>>>
    const reason: string = error.data.reason
    seen.push(reason)
  } else if (error) {
    type _ = Expect<Equal<typeof error, Error>>
    seen.push(error.message)
  } else {
    const name: string = me.name
    seen.push(name)
  }

  // the same with try/catch: a caught error is `unknown` until `isDefinedError` narrows it...
  try {
    await client.me()
  } catch (caught) {
    if (caught instanceof ORPCError && isDefinedError(caught)) seen.push(String(caught.data))
  }

  // ...a stream's error too: `consumeEventIterator` takes the call's promise, error type and all
  consumeEventIterator(client.failing(), {
    onEvent: (tick) => seen.push(String(tick.n)),
    onError: (failure) => {
      if (isDefinedError(failure)) {
        type _ = Expect<Equal<typeof failure, ORPCError<'BAD_REQUEST', Refused>>>
        const why: string = failure.data.why
        seen.push(why)
      }
    },
  })
  return seen
}

// tRPC: the router's error shape types every error (`TRPCClientError<AppRouter>`: `.data.code`,
// `.data.httpStatus`, `.shape`); a procedure's `errorShape` in its def, which tRPC 11.25 infers
// from `.errors(formatter)`, replaces it for that procedure: its `safe()` and its subscription's
// `onError` get that shape. The shape is a whole `{message, code, data}`: typed data lives in
// `data` next to tRPC's `code` and `httpStatus`, and Outer's tRPC errors carry none there today.
type UnauthorizedShape = TRPCDefaultErrorShape & { data: { reason: string } };
type RefusedShape = TRPCDefaultErrorShape & { data: { why: string } };

type Router = TRPCBuiltRouter<{ ctx: object, meta: object, errorShape: TRPCDefaultErrorShape, transformer: false }, {
  me: TRPCQueryProcedure<{ input: void, output: User, meta: object, errorShape: UnauthorizedShape }>,
  failing: TRPCSubscriptionProcedure<{ input: void, output: AsyncIterable<Tick, void>, meta: object, errorShape: RefusedShape }>,
  ping: TRPCQueryProcedure<{ input: void, output: User, meta: object }>,
}>;

export async function trpcTypedErrors(url: string): Promise<string[]> {
  const trpc = createTRPCClient<Router>({ links: [httpBatchLink({ url })] })
  const seen: string[] = []

  const [me, error] = await trpcSafe(trpc.me.query())
  if (error) {
    type _ = Expect<Equal<NonNullable<typeof error.data>, TRPCDefaultErrorShape['data'] & { reason: string }>>
    const reason: string | undefined = error.data?.reason
    const code: string | undefined = error.data?.code
    seen.push(`${code}: ${reason}`)
  } else {
    seen.push(me.name)
  }

  // without `errorShape` a procedure has the router's
  const [, plain] = await trpcSafe(trpc.ping.query())
  type _plain = Expect<Equal<NonNullable<typeof plain>['data'], TRPCDefaultErrorShape['data'] | null | undefined>>

  trpc.failing.subscribe(undefined, {
    onError: (failure) => {
      type _ = Expect<Equal<NonNullable<typeof failure.data>, TRPCDefaultErrorShape['data'] & { why: string }>>
      const why: string | undefined = failure.data?.why
      seen.push(String(why))
    },
  })

  // a thrown error is caught as `unknown`: the class's type parameter is only what you assert
  try {
    await trpc.me.query()
  } catch (caught) {
    if (caught instanceof TRPCClientError) seen.push(String(caught.data?.code))
  }
  return seen
}
