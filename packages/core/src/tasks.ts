/**
 * A bounded group of concurrent tasks that remembers the first failure: how a streaming stage
 * keeps a few pieces of work in flight (encode ahead, run the model while the next batch is read)
 * without an unbounded queue and without unhandled rejections.
 */
export class TaskGroup {
  private readonly tasks = new Set<Promise<void>>();
  private firstFailure: { error: unknown } | null = null;

  /** @param limit most tasks in flight before {@link room} waits. */
  constructor(readonly limit: number) {}

  get size(): number {
    return this.tasks.size;
  }

  /** True once a task has failed. */
  get failed(): boolean {
    return this.firstFailure !== null;
  }

  /** Throw the first failure, if any task failed. */
  check(): void {
    if (this.firstFailure) throw this.firstFailure.error;
  }

  /** Track a task; its rejection is recorded (the first one wins), never left unhandled. */
  add(task: Promise<unknown>): void {
    const tracked: Promise<void> = task.then(
      () => {
        this.tasks.delete(tracked);
      },
      (err: unknown) => {
        this.tasks.delete(tracked);
        this.firstFailure ??= { error: err };
      },
    );
    this.tasks.add(tracked);
  }

  /** Wait until fewer than `limit` tasks are in flight, then throw the first failure if any. */
  async room(): Promise<void> {
    while (this.tasks.size >= this.limit) await Promise.race(this.tasks);
    this.check();
  }

  /** Wait for every task, then throw the first failure if any. */
  async drain(): Promise<void> {
    while (this.tasks.size) await Promise.race(this.tasks);
    this.check();
  }

  /** Wait for every task without throwing (for cleanup paths). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.tasks]);
  }
}
