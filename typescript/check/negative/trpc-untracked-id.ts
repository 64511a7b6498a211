// tRPC: a subscription not declared `.tracked()` may send events without an id (failing sends
// {n} itself), so its events have no `id` until narrowed.
import { trpc } from '../clients.js'

trpc.failing.subscribe(undefined, {
  onData: (tick) => {
    console.log(tick.id) // @error
  },
})
