// Type-level and run-time checks shared by the programs in check/.

/** `true` when A and B are the same type (not merely assignable either way). */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

/**
 * `true` when A and B have the same structure: objects compared field by field after
 * flattening intersections (`{ id: number } & { title: string }` is `{ id: number, title: string }`),
 * with optional fields, unions, `void`, `null` and `any` told apart.
 */
export type Same<A, B> = Equal<Deep<A>, Deep<B>>

type Deep<T> = T extends (...args: any[]) => any
  ? T
  : T extends object ? { [K in keyof T]: Deep<T[K]> } : T

/** Compiles only when T is `true`: `type _ = Expect<Same<typeof x, Post>>`. */
export type Expect<T extends true> = T

/** Fails the run (when the program is run) unless `ok`. */
export function expect(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`check failed: ${what}`)
}

/** Fails the run unless `actual` is `expected` as JSON (in any key order). */
export function same(actual: unknown, expected: unknown, what: string): void {
  const [a, e] = [canonical(actual), canonical(expected)]
  expect(a === e, `${what}: got ${a}, expected ${e}`)
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Rejects after `ms` instead of waiting forever. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
