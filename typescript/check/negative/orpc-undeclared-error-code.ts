// oRPC: testing a typed error for a code the procedure does not declare (me declares only
// UNAUTHORIZED: a narrowed error's code is that and nothing else).
import { safe } from '@orpc/client'
import { orpc } from '../clients.js'

const [error, , isDefined] = await safe(orpc.me())
if (isDefined) {
  console.log(error.code === 'UNAUTHORIZED')
  console.log(error.code === 'NOT_FOUND') // @error
}
