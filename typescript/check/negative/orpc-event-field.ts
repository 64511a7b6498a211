// oRPC: reading a field a stream's event does not have (a post has an id and a title).
import { orpc } from '../clients.js'

for await (const post of await orpc.post.live()) {
  console.log(post.title)
  console.log(post.body) // @error
}
