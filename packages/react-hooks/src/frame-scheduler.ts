/**
 * Schedules one call of `flush` and returns a function that cancels it. The client calls it at
 * most once per pending update.
 *
 * @example
 * const everyTenthOfASecond: UpdateScheduler = (flush) => {
 *   const t = setTimeout(flush, 100)
 *   return () => clearTimeout(t)
 * }
 */
export type UpdateScheduler = (flush: () => void) => () => void

/** How long an update may wait when animation frames do not run (a hidden tab), ms. */
const FRAME_FALLBACK_MS = 250
/** Where there are no animation frames at all (SSR, Node, tests without a DOM), ms. */
const TIMER_FRAME_MS = 16

/**
 * The default {@link UpdateScheduler}: the next animation frame, with a timer as a fallback where
 * `requestAnimationFrame` is absent (Node, SSR) or does not run (a hidden tab). Looked up at call
 * time, never at import time.
 *
 * @example
 * createMeshtapClient({ url, scheduleUpdate: animationFrameScheduler })
 */
export const animationFrameScheduler: UpdateScheduler = (flush) => {
  const g = globalThis as {
    requestAnimationFrame?: (cb: () => void) => number
    cancelAnimationFrame?: (handle: number) => void
  }
  let done = false
  const run = () => {
    if (done) return
    done = true
    cancel()
    flush()
  }
  const raf = typeof g.requestAnimationFrame === 'function' ? g.requestAnimationFrame : undefined
  const frame = raf ? raf.call(globalThis, run) : undefined
  const timer = setTimeout(run, raf ? FRAME_FALLBACK_MS : TIMER_FRAME_MS)
  function cancel() {
    done = true
    clearTimeout(timer)
    if (frame !== undefined) g.cancelAnimationFrame?.call(globalThis, frame)
  }
  return cancel
}
