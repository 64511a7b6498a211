// Typed errors through the generated contract: the errors a procedure declares on the Rust side
// (`.declares::<Data>(code)`) narrow by code, their data typed; others stay plain `Error`.
import { safe } from '@orpc/client'
import type { Expect, Same } from './expect.js'
import { orpc } from './clients.js'
import type { Gap } from './shapes.js'

export async function declaredErrors(): Promise<void> {
  const [error, , isDefined] = await safe(orpc.mentions.live())
  if (isDefined) {
    if (error.code === 'PRECONDITION_FAILED') {
      type _ = Expect<Same<typeof error.data, Gap>>
    } else {
      type _ = Expect<Same<typeof error.code, 'UNAUTHORIZED'>>
    }
  }
  const [refused, , declared] = await safe(orpc.me())
  if (declared) {
    type _ = Expect<Same<typeof refused.code, 'UNAUTHORIZED'>>
  } else if (refused) {
    // anything else (a network error, a 500) is a plain Error
    type _ = Expect<Same<typeof refused, Error>>
  }
}
