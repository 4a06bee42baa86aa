/**
 * Kubernetes Events (core/v1, what `kubectl describe` shows) for any object, written in the
 * background so that the controller never waits for them and never fails because of them.
 *
 * A repeat of the same event (same object, type, reason and message) within the correlation
 * window bumps `count` and `lastTimestamp` of the Event already written, with a merge patch,
 * instead of adding another Event. Repeats recorded while a write is still queued are folded
 * into that write.
 *
 * @module
 */

import type { CoreV1Event, V1ObjectReference } from "@kubernetes/client-node";
import type { CoreApi } from "./api.ts";
import { apiStatusCode } from "./errors.ts";
import type { EventReason } from "./types.ts";

/** `type` of an Event. */
export type EventType = "Normal" | "Warning";

/**
 * The object an Event is about. Objects from list calls often lack `apiVersion` and `kind`,
 * so they are required here and the caller states them.
 *
 * @example
 * ```ts
 * import type { V1Service } from "@kubernetes/client-node";
 *
 * declare const service: V1Service;
 * const subject: EventSubject = { apiVersion: "v1", kind: "Service", metadata: service.metadata };
 * ```
 */
export interface EventSubject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: {
    readonly name?: string | undefined;
    readonly namespace?: string | undefined;
    readonly uid?: string | undefined;
    readonly resourceVersion?: string | undefined;
  } | undefined;
}

/**
 * What was recorded, as told to `onError` when it could not be written.
 *
 * @example
 * ```ts
 * const onError = (error: unknown, event: RecordedEvent) =>
 *   console.error(`event ${event.reason} on ${event.kind} ${event.namespace}/${event.name}`, error);
 * ```
 */
export interface RecordedEvent {
  /** Namespace the Event is written to (`default` for cluster-scoped objects). */
  readonly namespace: string;
  readonly kind: string;
  /** Name of the object; empty when it had none. */
  readonly name: string;
  readonly type: EventType;
  readonly reason: EventReason;
  /** The message as written, after truncation. */
  readonly message: string;
}

/**
 * Writes Kubernetes Events and never throws: what the controllers need of
 * {@linkcode EventRecorder} (tests pass their own).
 */
export interface EventSink {
  record(
    subject: EventSubject,
    type: EventType,
    reason: EventReason,
    message: string,
  ): Promise<void>;
}

/** The two calls the recorder makes; `k8s/api.ts` CoreApi (or client-node's CoreV1Api) has both. */
export type EventsClient = Pick<CoreApi, "createNamespacedEvent" | "patchNamespacedEvent">;

/** Options for {@linkcode EventRecorder}. */
export interface EventRecorderOptions {
  /** `source.component` and `reportingComponent`, e.g. `purelb-allocator`. */
  readonly component: string;
  /** `source.host`, e.g. the node name of an agent. Omitted when not given. */
  readonly host?: string;
  /** `reportingInstance`, e.g. the pod name. Defaults to `host`, else `component`. */
  readonly instance?: string;
  /** Told about every write that failed (the event is then lost); whatever it throws is ignored. */
  readonly onError?: (error: unknown, event: RecordedEvent) => void;
  /** A repeat this soon after the previous occurrence updates the same Event. Default 10 min. */
  readonly correlationWindowMs?: number;
  /** How many distinct events are remembered for correlation. Default 4096. */
  readonly correlationCacheSize?: number;
  /** Writes in flight at once. Default 16. */
  readonly maxConcurrentWrites?: number;
  /** Distinct events waiting to be written; beyond this the oldest is dropped. Default 1000. */
  readonly maxQueuedEvents?: number;
  /** The clock, in milliseconds since the epoch. Default `Date.now`. */
  readonly now?: () => number;
}

/** Raised (to `onError`) when an event cannot be written at all, e.g. its object has no name. */
export class EventRecorderError extends Error {
  override name = "EventRecorderError";
}

/** Longest Event message the API server accepts, in UTF-8 bytes. */
export const MAX_EVENT_MESSAGE_BYTES = 1024;

const TRUNCATION_MARK = "...";

/**
 * Cuts `message` to at most {@linkcode MAX_EVENT_MESSAGE_BYTES} UTF-8 bytes, on a character
 * boundary, ending with `...` when anything was cut.
 *
 * @example
 * ```ts
 * truncateEventMessage("x".repeat(2000)).length; // 1024
 * ```
 */
export function truncateEventMessage(message: string): string {
  if (utf8Length(message) <= MAX_EVENT_MESSAGE_BYTES) return message;
  const budget = MAX_EVENT_MESSAGE_BYTES - TRUNCATION_MARK.length;
  let bytes = 0;
  let end = 0;
  for (const character of message) {
    bytes += utf8Length(character);
    if (bytes > budget) break;
    end += character.length;
  }
  return message.slice(0, end) + TRUNCATION_MARK;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (const character of text) {
    const codePoint = character.codePointAt(0) ?? 0;
    bytes += codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** An Event already written, remembered for correlation. */
interface WrittenEvent {
  readonly namespace: string;
  readonly name: string;
  readonly count: number;
  readonly lastMs: number;
}

/** One queued write: the first occurrence plus repeats folded in while it waited. */
interface QueuedWrite {
  readonly key: string;
  readonly event: RecordedEvent;
  readonly involvedObject: V1ObjectReference;
  readonly firstMs: number;
  lastMs: number;
  occurrences: number;
  readonly waiters: (() => void)[];
}

/**
 * Writes Events in the background, correlating repeats, with bounded concurrency and queue.
 * `record` never throws and never waits for the API server unless awaited; failures go to
 * `onError`.
 *
 * @example
 * ```ts
 * import { CoreApi } from "./api.ts";
 * import { ApiConnection } from "./transport.ts";
 * import { EventReason } from "./types.ts";
 *
 * declare const connection: ApiConnection;
 * const recorder = new EventRecorder(new CoreApi(connection), {
 *   component: "purelb-allocator",
 *   onError: (error, event) => console.error(`event ${event.reason} lost`, error),
 * });
 * const service = { apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "shop" } };
 * recorder.record(service, "Normal", EventReason.AddressAssigned, "Assigned 192.0.2.1 from default");
 * await recorder.flush();
 * ```
 */
export class EventRecorder implements EventSink {
  readonly #client: EventsClient;
  readonly #component: string;
  readonly #host: string | undefined;
  readonly #instance: string;
  readonly #onError: (error: unknown, event: RecordedEvent) => void;
  readonly #windowMs: number;
  readonly #cacheSize: number;
  readonly #maxConcurrent: number;
  readonly #maxQueued: number;
  readonly #now: () => number;

  /** Insertion order is queue order; at most one entry per correlation key. */
  readonly #queued = new Map<string, QueuedWrite>();
  /** Keys being written: a key is never written twice at once, so repeats can find the Event. */
  readonly #writing = new Set<string>();
  /** Least recently used first. */
  readonly #written = new Map<string, WrittenEvent>();
  readonly #idleWaiters: (() => void)[] = [];
  #dropped = 0;

  /**
   * @param client where to write, normally `new CoreApi(connection)`
   * @param options the component name and limits
   */
  constructor(client: EventsClient, options: EventRecorderOptions) {
    this.#client = client;
    this.#component = options.component;
    this.#host = options.host;
    this.#instance = options.instance ?? options.host ?? options.component;
    this.#onError = options.onError ?? (() => {});
    this.#windowMs = options.correlationWindowMs ?? 10 * 60_000;
    this.#cacheSize = Math.max(1, options.correlationCacheSize ?? 4096);
    this.#maxConcurrent = Math.max(1, options.maxConcurrentWrites ?? 16);
    this.#maxQueued = Math.max(1, options.maxQueuedEvents ?? 1000);
    this.#now = options.now ?? Date.now;
  }

  /** How many recorded events were dropped because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Queues an Event about `subject`. The Promise resolves (never rejects) once the event has
   * been written, has failed (see `onError`), or was dropped; there is no need to await it.
   */
  record(
    subject: EventSubject,
    type: EventType,
    reason: EventReason,
    message: string,
  ): Promise<void> {
    const now = this.#now();
    const metadata = subject.metadata;
    const objectNamespace = metadata?.namespace || undefined;
    const name = metadata?.name ?? "";
    const event: RecordedEvent = {
      namespace: objectNamespace ?? "default",
      kind: subject.kind,
      name,
      type,
      reason,
      message: truncateEventMessage(message),
    };
    if (name === "") {
      this.#report(
        new EventRecorderError(`${subject.kind} without metadata.name: cannot name the Event`),
        event,
      );
      return Promise.resolve();
    }
    const objectKey = metadata?.uid ||
      `${subject.apiVersion}/${subject.kind}/${objectNamespace ?? ""}/${name}`;
    const key = JSON.stringify([objectKey, type, reason, event.message]);

    return new Promise((resolve) => {
      const queued = this.#queued.get(key);
      if (queued) {
        queued.occurrences += 1;
        queued.lastMs = now;
        queued.waiters.push(resolve);
        return;
      }
      this.#queued.set(key, {
        key,
        event,
        involvedObject: {
          apiVersion: subject.apiVersion,
          kind: subject.kind,
          name,
          ...(objectNamespace === undefined ? {} : { namespace: objectNamespace }),
          ...(metadata?.uid ? { uid: metadata.uid } : {}),
          ...(metadata?.resourceVersion ? { resourceVersion: metadata.resourceVersion } : {}),
        },
        firstMs: now,
        lastMs: now,
        occurrences: 1,
        waiters: [resolve],
      });
      this.#startWrites();
      this.#dropOverflow();
    });
  }

  /** Resolves when every event recorded so far (and since) has been written, failed or dropped. */
  flush(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #isIdle(): boolean {
    return this.#queued.size === 0 && this.#writing.size === 0;
  }

  #startWrites(): void {
    while (this.#writing.size < this.#maxConcurrent) {
      const next = this.#nextWritable();
      if (next === undefined) break;
      this.#queued.delete(next.key);
      this.#writing.add(next.key);
      void this.#write(next);
    }
    if (this.#isIdle()) {
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  /** The oldest queued write whose key is not being written (at most `maxConcurrent` skipped). */
  #nextWritable(): QueuedWrite | undefined {
    for (const queued of this.#queued.values()) {
      if (!this.#writing.has(queued.key)) return queued;
    }
    return undefined;
  }

  #dropOverflow(): void {
    while (this.#queued.size > this.#maxQueued) {
      const oldest = this.#queued.values().next();
      if (oldest.done) return;
      this.#queued.delete(oldest.value.key);
      this.#dropped += oldest.value.occurrences;
      for (const resolve of oldest.value.waiters) resolve();
    }
  }

  async #write(queued: QueuedWrite): Promise<void> {
    try {
      await this.#send(queued);
    } catch (error) {
      this.#report(error, queued.event);
    } finally {
      this.#writing.delete(queued.key);
      for (const resolve of queued.waiters) resolve();
      this.#startWrites();
    }
  }

  async #send(queued: QueuedWrite): Promise<void> {
    const previous = this.#written.get(queued.key);
    if (previous !== undefined && queued.firstMs - previous.lastMs <= this.#windowMs) {
      const count = previous.count + queued.occurrences;
      try {
        const patched = await this.#client.patchNamespacedEvent({
          namespace: previous.namespace,
          name: previous.name,
          body: { count, lastTimestamp: new Date(queued.lastMs).toISOString() },
        });
        this.#remember(queued.key, {
          ...previous,
          count: patched.count ?? count,
          lastMs: queued.lastMs,
        });
        return;
      } catch (error) {
        // Gone (expired by the API server's event TTL, or deleted): start a new Event.
        if (apiStatusCode(error) !== 404) throw error;
        this.#written.delete(queued.key);
      }
    }
    const { event } = queued;
    const body: CoreV1Event = {
      metadata: { generateName: `${event.name}.`, namespace: event.namespace },
      involvedObject: queued.involvedObject,
      type: event.type,
      reason: event.reason,
      message: event.message,
      source: this.#host === undefined
        ? { component: this.#component }
        : { component: this.#component, host: this.#host },
      reportingComponent: this.#component,
      reportingInstance: this.#instance,
      firstTimestamp: new Date(queued.firstMs),
      lastTimestamp: new Date(queued.lastMs),
      count: queued.occurrences,
    };
    const created = await this.#client.createNamespacedEvent({ namespace: event.namespace, body });
    const name = created.metadata?.name;
    if (name) {
      this.#remember(queued.key, {
        namespace: event.namespace,
        name,
        count: created.count ?? queued.occurrences,
        lastMs: queued.lastMs,
      });
    }
  }

  #remember(key: string, written: WrittenEvent): void {
    this.#written.delete(key);
    this.#written.set(key, written);
    while (this.#written.size > this.#cacheSize) {
      const oldest = this.#written.keys().next();
      if (oldest.done) return;
      this.#written.delete(oldest.value);
    }
  }

  #report(error: unknown, event: RecordedEvent): void {
    try {
      this.#onError(error, event);
    } catch {
      // A failing error callback must not break the recorder either.
    }
  }
}
