// tRPC: a resume id that is not a string.
import { trpc } from '../clients.js'

trpc.counter.subscribe({ from: 1, to: 3, delayMs: 0, lastEventId: 2 }, { onData: (event) => console.log(event.id) }) // @error
