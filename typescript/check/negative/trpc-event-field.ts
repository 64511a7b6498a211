// tRPC: reading a field a subscription's event does not have (a post has an id and a title).
import { trpc } from '../clients.js'

trpc.post.live.subscribe(undefined, {
  onData: (event) => {
    console.log(event.id, event.data.title)
    console.log(event.data.body) // @error
  },
})
