/**
 * Kubernetes label selectors (`matchLabels` and `matchExpressions` with `In`, `NotIn`,
 * `Exists`, `DoesNotExist`): read one from JSON, say what is wrong with it, and match it
 * against an object's labels. Pure.
 *
 * Meaning, as in Kubernetes: every `matchLabels` entry and every expression must hold; `In`
 * needs the label with one of the values, `NotIn` holds when the label is absent or has none of
 * them, `Exists` / `DoesNotExist` look at the key alone. A selector with no entry at all
 * (`{}`) selects everything.
 *
 * @module
 */

/** The operators of a `matchExpressions` entry. */
export const SELECTOR_OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;

/** One of {@linkcode SELECTOR_OPERATORS}. */
export type SelectorOperator = typeof SELECTOR_OPERATORS[number];

/** A `matchExpressions` entry as written. */
export interface LabelSelectorRequirement {
  readonly key: string;
  /** One of {@linkcode SELECTOR_OPERATORS} once validated. */
  readonly operator: string;
  /** Required (non-empty) for `In` / `NotIn`, empty or absent for `Exists` / `DoesNotExist`. */
  readonly values?: readonly string[];
}

/** A label selector as written in an object (`metav1.LabelSelector`). */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

/** One checked condition on a label. */
export interface Requirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: ReadonlySet<string>;
}

/** A checked selector: all of its requirements must hold; none selects everything. */
export interface CompiledSelector {
  readonly requirements: readonly Requirement[];
}

/** A selector read from an object: ready to match, or what is wrong with it. */
export type SelectorReading =
  | { readonly kind: "valid"; readonly selector: CompiledSelector }
  | { readonly kind: "invalid"; readonly problem: string };

/** Labels as an object carries them. */
export type Labels = Readonly<Record<string, string>>;

// A label key: an optional DNS subdomain prefix and "/", then a name of at most 63 characters.
const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a label key, or `undefined` when it is one. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !PREFIX.test(prefix))) {
    return `${JSON.stringify(key)} is not a label key: the prefix before "/" must be a DNS ` +
      `subdomain (lower case letters, digits, "-" and ".")`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `${JSON.stringify(key)} is not a label key: the name must be 1 to 63 letters, ` +
      `digits, "-", "_" or ".", beginning and ending with a letter or digit`;
  }
  return undefined;
}

/** Why `value` is not a label value, or `undefined` when it is one (empty is one). */
export function labelValueProblem(value: string): string | undefined {
  if (value === "" || (value.length <= 63 && NAME.test(value))) return undefined;
  return `${JSON.stringify(value)} is not a label value: at most 63 letters, digits, "-", "_" ` +
    `or ".", beginning and ending with a letter or digit`;
}

function isOperator(value: string): value is SelectorOperator {
  return (SELECTOR_OPERATORS as readonly string[]).includes(value);
}

/**
 * Checks `selector` (found at `path`, for the messages) and prepares it for matching.
 * `undefined` (no selector) selects everything, as `{}` does.
 *
 * @example
 * ```ts
 * import { compileLabelSelector } from "./selector.ts";
 *
 * compileLabelSelector({ matchExpressions: [{ key: "edge", operator: "Exists", values: ["x"] }] },
 *   "spec.nodeSelector");
 * // { kind: "invalid", problem: "spec.nodeSelector.matchExpressions[0].values: must be empty for operator Exists" }
 * ```
 */
export function compileLabelSelector(
  selector: LabelSelector | undefined,
  path: string,
): SelectorReading {
  const requirements: Requirement[] = [];
  const invalid = (problem: string): SelectorReading => ({ kind: "invalid", problem });
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    const where = `${path}.matchLabels[${JSON.stringify(key)}]`;
    const problem = labelKeyProblem(key) ?? labelValueProblem(value);
    if (problem !== undefined) return invalid(`${where}: ${problem}`);
    requirements.push({ key, operator: "In", values: new Set([value]) });
  }
  for (const [index, expression] of (selector?.matchExpressions ?? []).entries()) {
    const where = `${path}.matchExpressions[${index}]`;
    const keyProblem = labelKeyProblem(expression.key);
    if (keyProblem !== undefined) return invalid(`${where}.key: ${keyProblem}`);
    const operator = expression.operator;
    if (!isOperator(operator)) {
      return invalid(
        `${where}.operator: must be one of ${SELECTOR_OPERATORS.join(", ")}, not ${
          JSON.stringify(operator)
        }`,
      );
    }
    const values = expression.values ?? [];
    const needsValues = operator === "In" || operator === "NotIn";
    if (needsValues && values.length === 0) {
      return invalid(`${where}.values: must not be empty for operator ${operator}`);
    }
    if (!needsValues && values.length > 0) {
      return invalid(`${where}.values: must be empty for operator ${operator}`);
    }
    for (const [at, value] of values.entries()) {
      const problem = labelValueProblem(value);
      if (problem !== undefined) return invalid(`${where}.values[${at}]: ${problem}`);
    }
    requirements.push({ key: expression.key, operator, values: new Set(values) });
  }
  return { kind: "valid", selector: { requirements } };
}

/**
 * True when `labels` satisfy every requirement of `selector`.
 *
 * @example
 * ```ts
 * import { compileLabelSelector, selectorMatches } from "./selector.ts";
 *
 * const reading = compileLabelSelector({ matchLabels: { role: "edge" } }, "nodeSelector");
 * if (reading.kind === "valid") {
 *   selectorMatches(reading.selector, { role: "edge", zone: "a" }); // true
 *   selectorMatches(reading.selector, { role: "worker" }); // false
 * }
 * ```
 */
export function selectorMatches(selector: CompiledSelector, labels: Labels): boolean {
  return selector.requirements.every((requirement) => requirementHolds(requirement, labels));
}

function requirementHolds({ key, operator, values }: Requirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, key);
  const value = has ? labels[key] : undefined;
  switch (operator) {
    case "In":
      return value !== undefined && values.has(value);
    case "NotIn":
      return value === undefined || !values.has(value);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
  }
}

/** True when `selector` selects everything (no requirement at all): a catch-all. */
export function selectsEverything(selector: CompiledSelector): boolean {
  return selector.requirements.length === 0;
}
