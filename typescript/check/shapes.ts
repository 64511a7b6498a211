// The chat's values as they travel, written here independently of the golden modules: the
// checks compare the generated types with these by structure, so a generator may name its
// types as it likes (`Post<number>`, `{ id: number } & PostText`, ...).
export type Ping = { n: number }
export type Pong = { n: number }
export type NewPost = { title: string }
export type Post = { id: number, title: string }
export type CounterInput = { from: number, to: number, delayMs: number }
export type Tick = { n: number }
export type Finished = { done: boolean }
export type User = { name: string }
/** The data of a PRECONDITION_FAILED that mentions.live and post.live declare (a gap). */
export type Gap = { gap: 'expired' | 'unknown' | 'lagged', lastEventId: string, nextEventId: string | null, missed: number | null }

/** What a tracked tRPC subscription takes besides its input. */
export type Resume = { lastEventId?: string | null }

/** A tracked tRPC event as `onData` and `for await` get it. */
export type Tracked<T> = { id: string, data: T }
