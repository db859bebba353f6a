/**
 * Waiting for a worker thread to end, with a bound.
 * @module
 */
import type { Worker } from 'node:worker_threads'

/**
 * Waits for `worker` to exit (`exited` resolves on its `exit` event), at most `ms`; past that it is
 * terminated. The worker is referenced meanwhile: an unreferenced worker is no reason for Node to
 * wait, and a program whose last task is this wait could exit before it ended.
 * @internal
 */
export async function awaitExit(worker: Worker, exited: Promise<void>, ms = 5000): Promise<void> {
  worker.ref()
  let timeout: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<'late'>((done) => {
    timeout = setTimeout(() => done('late'), ms)
  })
  try {
    if ((await Promise.race([exited, late])) === 'late') await worker.terminate()
  } finally {
    if (timeout) clearTimeout(timeout)
  }
}
