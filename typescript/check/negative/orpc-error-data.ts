// oRPC: wrong error data. mentions.live declares PRECONDITION_FAILED with GapData (what a 412
// gap carries: gap, lastEventId, nextEventId, missed); a narrowed error has no other field.
import { safe } from '@orpc/client'
import { orpc } from '../clients.js'

const [error, , isDefined] = await safe(orpc.mentions.live())
if (isDefined && error.code === 'PRECONDITION_FAILED') {
  console.log(error.data.gap)
  console.log(error.data.newest) // @error
}
