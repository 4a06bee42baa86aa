/**
 * Who may use which ServiceGroup (README "Tenancy: who may use a ServiceGroup"). Pure: built
 * from the groups' `spec.namespaces`, `spec.enforceNamespaces` and `spec.namespaceDefault`, it
 * answers which group an unannotated Service of a namespace gets, and whether a namespace may
 * use a group it names (or whose address it asks for).
 *
 * - A group *serves* the namespaces its `namespaces` lists.
 * - A namespace listed by a group with `enforceNamespaces: true` is *fenced*, both ways: its
 *   Services may use only the groups that serve it, and a group that lists a fenced namespace
 *   may be used only by the namespaces it lists.
 * - Without any fence, every namespace may use every group.
 *
 * @module
 */

import type { GroupTenancy } from "../ipam/mod.ts";
import { DEFAULT_SERVICE_GROUP } from "../k8s/types.ts";

/** A group's name with its tenancy fields. */
export interface TenancyGroup {
  readonly name: string;
  readonly tenancy: GroupTenancy;
}

/** Which group a Service is to use, or why it may use none. */
export type GroupChoice =
  | { readonly kind: "use"; readonly group: string; readonly warnings: readonly string[] }
  | { readonly kind: "refused"; readonly reason: string; readonly warnings: readonly string[] };

/**
 * The namespace rules of a set of groups.
 *
 * @example
 * ```ts
 * const rules = new TenancyRules([
 *   { name: "a", tenancy: { namespaces: ["team-a"], enforceNamespaces: true, namespaceDefault: false } },
 *   { name: "default", tenancy: { enforceNamespaces: false, namespaceDefault: false } },
 * ]);
 * rules.choose("team-a", undefined); // { kind: "use", group: "a", warnings: [] }
 * rules.choose("team-b", "a").kind; // "refused"
 * rules.choose("team-a", "default").kind; // "refused"
 * ```
 */
export class TenancyRules {
  /** Namespace -> names of the groups that list it, sorted. */
  readonly #servedBy = new Map<string, string[]>();
  readonly #groups = new Map<string, GroupTenancy>();
  readonly #fenced = new Set<string>();

  /** Rules of these groups; a name given twice keeps the last. */
  constructor(groups: readonly TenancyGroup[]) {
    for (const { name, tenancy } of groups) this.#groups.set(name, tenancy);
    for (const [name, tenancy] of [...this.#groups].sort(([a], [b]) => compare(a, b))) {
      for (const namespace of tenancy.namespaces ?? []) {
        const serving = this.#servedBy.get(namespace) ?? [];
        serving.push(name);
        this.#servedBy.set(namespace, serving);
        if (tenancy.enforceNamespaces) this.#fenced.add(namespace);
      }
    }
  }

  /** True when some group lists namespaces: the rules may differ from "annotation or default". */
  get active(): boolean {
    return [...this.#groups.values()].some((t) => t.namespaces !== undefined);
  }

  /** The namespaces `group` lists, if it lists any (its `status.boundNamespaces`). */
  boundNamespaces(group: string): readonly string[] | undefined {
    return this.#groups.get(group)?.namespaces;
  }

  /** Whether `group` lists `namespace`. */
  serves(group: string, namespace: string): boolean {
    return this.#groups.get(group)?.namespaces?.includes(namespace) ?? false;
  }

  /** Whether a group with `enforceNamespaces: true` lists `namespace`. */
  isFenced(namespace: string): boolean {
    return this.#fenced.has(namespace);
  }

  /**
   * Why `namespace` may not use `group` (a sentence naming both), or `undefined` when it may.
   */
  refusal(namespace: string, group: string): string | undefined {
    if (this.serves(group, namespace)) return undefined;
    if (this.isFenced(namespace)) {
      const serving = this.#servedBy.get(namespace) ?? [];
      return `namespace "${namespace}" is fenced (enforceNamespaces): it may use only the ` +
        `ServiceGroups that list it (${serving.join(", ")}), not ServiceGroup "${group}"`;
    }
    const listed = this.#groups.get(group)?.namespaces ?? [];
    if (listed.some((n) => this.#fenced.has(n))) {
      return `ServiceGroup "${group}" lists a fenced namespace, so it serves only the ` +
        `namespaces it lists (${listed.join(", ")}), not namespace "${namespace}"`;
    }
    return undefined;
  }

  /**
   * The group for a Service of `namespace` that names `annotated` (the `purelb.io/service-group`
   * annotation) or none: the named one if allowed; else the one group that serves the
   * namespace; of several, the one marked `namespaceDefault`; otherwise (none serves it, or no
   * single default among several: then with a warning naming them) `default`, unless the
   * namespace is fenced.
   */
  choose(namespace: string, annotated: string | undefined): GroupChoice {
    if (annotated !== undefined) return this.#allowed(namespace, annotated, []);
    const serving = this.#servedBy.get(namespace) ?? [];
    const [only] = serving;
    if (only !== undefined && serving.length === 1) {
      return { kind: "use", group: only, warnings: [] };
    }
    if (serving.length === 0) return this.#allowed(namespace, DEFAULT_SERVICE_GROUP, []);
    const defaults = serving.filter((name) => this.#groups.get(name)?.namespaceDefault === true);
    const [chosen] = defaults;
    if (chosen !== undefined && defaults.length === 1) {
      return { kind: "use", group: chosen, warnings: [] };
    }
    const marked = defaults.length === 0
      ? "none of them is marked namespaceDefault"
      : `more than one is marked namespaceDefault (${defaults.join(", ")})`;
    const fenced = this.isFenced(namespace);
    const warning = `namespace "${namespace}" is served by ServiceGroups ${serving.join(", ")} ` +
      `and ${marked}; ` +
      (fenced
        ? "the namespace is fenced, so no group is chosen: name one with purelb.io/service-group"
        : `using ServiceGroup "${DEFAULT_SERVICE_GROUP}"`);
    if (fenced) return { kind: "refused", reason: warning, warnings: [warning] };
    return this.#allowed(namespace, DEFAULT_SERVICE_GROUP, [warning]);
  }

  #allowed(namespace: string, group: string, warnings: readonly string[]): GroupChoice {
    const reason = this.refusal(namespace, group);
    return reason === undefined
      ? { kind: "use", group, warnings }
      : { kind: "refused", reason, warnings };
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
