/**
 * Lease-based leader election, so that of several allocator replicas exactly one writes.
 *
 * Safety rule: a leader stops acting (its leadership signal aborts) once `renewDeadlineMs` has
 * passed since the start of its last successful renewal, even while a renewal request still
 * hangs. Another candidate may take over only after it has seen the same Lease record unchanged
 * for `leaseDurationMs` on its own clock. With renewDeadline < leaseDuration the old leader has
 * stopped before anyone else can start. Expiry is judged by when a candidate *observed* a
 * record, not by comparing the record's timestamps with the local clock, so clock skew between
 * machines does not matter.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { type CoordinationApi, MicroTime } from "./api.ts";
import { sleep } from "./backoff.ts";
import { apiStatusCode, errorMessage } from "./errors.ts";

/** The Lease calls an elector makes (`k8s/api.ts` CoordinationApi, or client-node's). */
export type LeaseApi = Pick<
  CoordinationApi,
  "readNamespacedLease" | "createNamespacedLease" | "replaceNamespacedLease"
>;

/** Options for {@linkcode LeaderElector}. */
export interface LeaderElectionOptions {
  /** Namespace and name of the Lease object. */
  readonly namespace: string;
  readonly name: string;
  /** This candidate's identity (e.g. the Pod name); must be unique among candidates. */
  readonly identity: string;
  /** How long a Lease stays valid without renewal. Default 15 s. */
  readonly leaseDurationMs?: number;
  /** A leader that has not renewed for this long stops acting. Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** How often to renew (leader) or try to acquire (candidate). Default 2 s. */
  readonly retryPeriodMs?: number;
  /** Called on becoming leader; `leadership` aborts the moment leadership is lost. */
  readonly onStartedLeading?: (leadership: AbortSignal) => void;
  /** Called on losing (or giving up) leadership. */
  readonly onStoppedLeading?: () => void;
  /** Called when the observed holder changes (including to this candidate). */
  readonly onNewLeader?: (identity: string) => void;
  /** Told about failed API calls, for logging. */
  readonly onError?: (message: string) => void;
}

/** Raised for option combinations that would break the safety rule. */
export class LeaderElectionConfigError extends Error {
  override name = "LeaderElectionConfigError";
}

interface ObservedRecord {
  readonly holder: string;
  readonly renewTime: string;
  readonly observedAt: number;
}

/**
 * One candidate in a Lease-based election. `run()` campaigns until `stop()`.
 *
 * @example
 * ```ts
 * import { CoordinationApi } from "./api.ts";
 * import type { ApiConnection } from "./transport.ts";
 * declare const connection: ApiConnection;
 * declare const controller: { lead(leadership: AbortSignal): Promise<void> };
 *
 * const elector = new LeaderElector(new CoordinationApi(connection), {
 *   namespace: "purelb-system", name: "purelb-allocator", identity: Deno.hostname(),
 *   onStartedLeading: (leadership) => controller.lead(leadership),
 * });
 * elector.run();
 * // ... on shutdown:
 * await elector.stop(); // releases the Lease so a standby takes over at once
 * ```
 */
export class LeaderElector {
  readonly #api: LeaseApi;
  readonly #options: LeaderElectionOptions;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  #observed: ObservedRecord | undefined;
  #leadership: AbortController | undefined;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = new AbortController();
  #running: Promise<void> | undefined;

  constructor(api: LeaseApi, options: LeaderElectionOptions) {
    this.#api = api;
    this.#options = options;
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.#renewDeadlineMs >= this.#leaseDurationMs) {
      throw new LeaderElectionConfigError(
        `renewDeadline (${this.#renewDeadlineMs} ms) must be shorter than leaseDuration ` +
          `(${this.#leaseDurationMs} ms), or two leaders could act at once`,
      );
    }
    if (this.#retryPeriodMs >= this.#renewDeadlineMs) {
      throw new LeaderElectionConfigError(
        `retryPeriod (${this.#retryPeriodMs} ms) must be shorter than renewDeadline ` +
          `(${this.#renewDeadlineMs} ms), or a leader could never renew in time`,
      );
    }
  }

  /** True while this candidate leads and may act. */
  get isLeader(): boolean {
    return this.#leadership !== undefined && !this.#leadership.signal.aborted;
  }

  /** The identity of the holder last observed (may be this candidate), or "" if none. */
  get observedLeader(): string {
    return this.#observed?.holder ?? "";
  }

  /** Campaigns (and renews while leading) until {@linkcode stop}. Returns when stopped. */
  run(): Promise<void> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  /**
   * Stops campaigning. A leader first stops acting, then releases the Lease (empty holder) so
   * that a standby takes over within one retry period instead of a full lease duration.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#running;
    if (this.#leadership) {
      this.#loseLeadership();
      await this.#release().catch((error) =>
        this.#options.onError?.(`releasing lease: ${errorMessage(error)}`)
      );
    }
  }

  async #loop(): Promise<void> {
    const stop = this.#stopping.signal;
    while (!stop.aborted) {
      const attemptStartedAt = performance.now();
      let acquired = false;
      try {
        acquired = await this.#tryAcquireOrRenew(attemptStartedAt);
      } catch (error) {
        this.#options.onError?.(`lease ${this.#options.name}: ${errorMessage(error)}`);
      }
      if (stop.aborted) break;
      if (acquired) this.#renewed(attemptStartedAt);
      const jitter = acquired ? 1 : 1 + Math.random() * 0.2;
      await sleep(this.#retryPeriodMs * jitter, stop).catch(() => {/* stopping */});
    }
  }

  /** A renewal that started at `startedAt` succeeded: lead, and (re)arm the deadline. */
  #renewed(startedAt: number): void {
    if (!this.#leadership || this.#leadership.signal.aborted) {
      this.#leadership = new AbortController();
      this.#options.onStartedLeading?.(this.#leadership.signal);
    }
    clearTimeout(this.#deadlineTimer);
    const remaining = startedAt + this.#renewDeadlineMs - performance.now();
    this.#deadlineTimer = setTimeout(() => this.#loseLeadership(), Math.max(0, remaining));
  }

  #loseLeadership(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    const leadership = this.#leadership;
    this.#leadership = undefined;
    if (leadership && !leadership.signal.aborted) {
      leadership.abort();
      this.#options.onStoppedLeading?.();
    }
  }

  async #tryAcquireOrRenew(now: number): Promise<boolean> {
    const { namespace, name, identity } = this.#options;
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ namespace, name });
    } catch (error) {
      if (apiStatusCode(error) !== 404) throw error;
      const created = await this.#create().catch((createError) => {
        if (apiStatusCode(createError) === 409) return false;
        throw createError;
      });
      if (created) this.#observe(identity, String(created), now);
      return created !== false;
    }

    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    this.#observe(holder, String(spec.renewTime ?? ""), now);
    const observed = this.#observed;
    const heldByOther = holder !== "" && holder !== identity;
    if (heldByOther && observed && now < observed.observedAt + this.#leaseDurationMs) {
      return false;
    }

    const renewTime = new MicroTime();
    const takingOver = holder !== identity;
    const updated: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: Math.ceil(this.#leaseDurationMs / 1000),
        renewTime,
        ...(takingOver
          ? { acquireTime: renewTime, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
          : {}),
      },
    };
    try {
      await this.#api.replaceNamespacedLease({ namespace, name, body: updated });
    } catch (error) {
      if (apiStatusCode(error) === 409) return false;
      throw error;
    }
    this.#observe(identity, renewTime.toISOString(), now);
    return true;
  }

  async #create(): Promise<string | false> {
    const { namespace, name, identity } = this.#options;
    const now = new MicroTime();
    await this.#api.createNamespacedLease({
      namespace,
      body: {
        metadata: { name, namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: Math.ceil(this.#leaseDurationMs / 1000),
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        },
      },
    });
    return now.toISOString();
  }

  #observe(holder: string, renewTime: string, now: number): void {
    const previous = this.#observed;
    if (previous && previous.holder === holder && previous.renewTime === renewTime) return;
    this.#observed = { holder, renewTime, observedAt: now };
    if (previous?.holder !== holder && holder !== "") this.#options.onNewLeader?.(holder);
  }

  async #release(): Promise<void> {
    const { namespace, name, identity } = this.#options;
    const lease = await this.#api.readNamespacedLease({ namespace, name });
    if (lease.spec?.holderIdentity !== identity) return;
    await this.#api.replaceNamespacedLease({
      namespace,
      name,
      body: {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: new MicroTime(),
        },
      },
    });
  }
}
