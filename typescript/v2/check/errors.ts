// Typed errors through the generated contract under oRPC 2: the errors a procedure declares on
// the Rust side (`.declares::<Data>(code)`: me's UNAUTHORIZED, post.live's and mentions.live's
// PRECONDITION_FAILED with GapData) narrow by code, their data typed; others stay plain `Error`.
// v2's `safe` gives `[error, data, inferableError, isSuccess]` (v1: `[error, data, isDefined]`),
// and `isDefinedError` is `isInferableError`. Only type-checked: check/use.ts meets these errors
// at run time.
import { consumeEventIterator, isDefinedError, isInferableError, ORPCError, safe } from '@orpc/client'
import type { Equal, Expect, Same } from '../../check/expect.js'
import type { Gap, Post } from '../../check/shapes.js'
import { orpc } from './clients.js'

export async function declaredErrors(): Promise<string[]> {
  const seen: string[] = []

  // the tuple: `inferableError` is the declared error or null
  const [error, posts, inferable, isSuccess] = await safe(orpc.mentions.live())
  if (inferable) {
    if (inferable.code === 'PRECONDITION_FAILED') {
      type _ = Expect<Same<typeof inferable.data, Gap>>
      const gap: 'expired' | 'unknown' | 'lagged' = inferable.data.gap
      seen.push(gap)
    } else {
      type _ = Expect<Equal<typeof inferable, ORPCError<'UNAUTHORIZED', unknown>>>
    }
    type _same = Expect<Equal<typeof error, typeof inferable>>
  } else if (error) {
    // anything else (a network error, a 500, an undeclared code) is a plain Error
    type _ = Expect<Equal<typeof error, Error>>
    seen.push(error.message)
  } else {
    type _ = Expect<Equal<typeof isSuccess, true>>
    for await (const post of posts) {
      type _post = Expect<Same<typeof post, Post>>
      seen.push(post.title)
    }
  }

  // the object: the same, by name
  const me = await safe(orpc.me())
  if (me.isSuccess) {
    const name: string = me.data.name
    seen.push(name)
  } else if (isDefinedError(me.error)) {
    type _ = Expect<Equal<typeof me.error, ORPCError<'UNAUTHORIZED', unknown>>>
    const code: 'UNAUTHORIZED' = me.error.code
    seen.push(code)
  }

  // a caught error is `unknown` until narrowed; isInferableError keeps the ORPCError part
  try {
    await orpc.me()
  } catch (caught) {
    if (caught instanceof ORPCError && isInferableError(caught)) seen.push(String(caught.code))
  }

  // a stream's error: `consumeEventIterator` takes the call's promise, error type and all
  consumeEventIterator(orpc.post.live(undefined, { lastEventId: '1' }), {
    onEvent: (post) => seen.push(post.title),
    onError: (failure) => {
      if (isDefinedError(failure)) {
        type _ = Expect<Same<typeof failure, ORPCError<'PRECONDITION_FAILED', Gap>>>
        const missed: number | null = failure.data.missed
        seen.push(String(missed))
      }
    },
  })
  return seen
}
