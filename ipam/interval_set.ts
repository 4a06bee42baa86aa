/**
 * A set of bigint values kept as maximal disjoint intervals in a balanced (AVL) tree, so that
 * adding, removing, membership and "lowest value not in the set from here on" all take
 * O(log intervals) time and memory grows with the values held, never with the space they
 * come from.
 *
 * @module
 */

interface IntervalNode {
  low: bigint;
  high: bigint;
  left: IntervalNode | undefined;
  right: IntervalNode | undefined;
  height: number;
}

function heightOf(node: IntervalNode | undefined): number {
  return node === undefined ? 0 : node.height;
}

function updateHeight(node: IntervalNode): void {
  node.height = 1 + Math.max(heightOf(node.left), heightOf(node.right));
}

function rotateRight(node: IntervalNode): IntervalNode {
  const pivot = node.left;
  if (pivot === undefined) return node;
  node.left = pivot.right;
  pivot.right = node;
  updateHeight(node);
  updateHeight(pivot);
  return pivot;
}

function rotateLeft(node: IntervalNode): IntervalNode {
  const pivot = node.right;
  if (pivot === undefined) return node;
  node.right = pivot.left;
  pivot.left = node;
  updateHeight(node);
  updateHeight(pivot);
  return pivot;
}

function rebalance(node: IntervalNode): IntervalNode {
  updateHeight(node);
  const balance = heightOf(node.left) - heightOf(node.right);
  if (balance > 1 && node.left !== undefined) {
    if (heightOf(node.left.left) < heightOf(node.left.right)) node.left = rotateLeft(node.left);
    return rotateRight(node);
  }
  if (balance < -1 && node.right !== undefined) {
    if (heightOf(node.right.right) < heightOf(node.right.left)) {
      node.right = rotateRight(node.right);
    }
    return rotateLeft(node);
  }
  return node;
}

function insertNode(
  node: IntervalNode | undefined,
  low: bigint,
  high: bigint,
): IntervalNode {
  if (node === undefined) return { low, high, left: undefined, right: undefined, height: 1 };
  if (low < node.low) node.left = insertNode(node.left, low, high);
  else node.right = insertNode(node.right, low, high);
  return rebalance(node);
}

function removeLowest(
  node: IntervalNode,
): { rest: IntervalNode | undefined; lowest: IntervalNode } {
  if (node.left === undefined) return { rest: node.right, lowest: node };
  const { rest, lowest } = removeLowest(node.left);
  node.left = rest;
  return { rest: rebalance(node), lowest };
}

function deleteNode(node: IntervalNode | undefined, low: bigint): IntervalNode | undefined {
  if (node === undefined) return undefined;
  if (low < node.low) node.left = deleteNode(node.left, low);
  else if (low > node.low) node.right = deleteNode(node.right, low);
  else {
    if (node.left === undefined) return node.right;
    if (node.right === undefined) return node.left;
    const { rest, lowest } = removeLowest(node.right);
    lowest.left = node.left;
    lowest.right = rest;
    return rebalance(lowest);
  }
  return rebalance(node);
}

/**
 * A mutable set of bigint values stored as merged intervals.
 *
 * @example
 * ```ts
 * const used = new IntervalSet();
 * used.add(5n); used.add(6n);
 * used.nextAbsent(5n); // 7n
 * ```
 */
export class IntervalSet {
  #root: IntervalNode | undefined = undefined;
  #count = 0;
  #intervalCount = 0;

  /** Number of values in the set. */
  get size(): number {
    return this.#count;
  }

  /** Number of maximal intervals the values form. */
  get intervalCount(): number {
    return this.#intervalCount;
  }

  /** The interval with the greatest low end that is <= value. */
  #floor(value: bigint): IntervalNode | undefined {
    let node = this.#root;
    let found: IntervalNode | undefined;
    while (node !== undefined) {
      if (node.low <= value) {
        found = node;
        node = node.right;
      } else {
        node = node.left;
      }
    }
    return found;
  }

  /** Whether the value is in the set. */
  has(value: bigint): boolean {
    const floor = this.#floor(value);
    return floor !== undefined && floor.high >= value;
  }

  /** Adds the value; returns false when it was already there. */
  add(value: bigint): boolean {
    const before = this.#floor(value);
    if (before !== undefined && before.high >= value) return false;
    const after = this.#floor(value + 1n);
    const joinsAfter = after !== undefined && after.low === value + 1n;
    const joinsBefore = before !== undefined && before.high === value - 1n;
    if (joinsBefore && joinsAfter) {
      before.high = after.high;
      this.#root = deleteNode(this.#root, after.low);
      this.#intervalCount--;
    } else if (joinsBefore) {
      before.high = value;
    } else if (joinsAfter) {
      // Lowering the key by one keeps the tree order: nothing lies between value and after.low.
      after.low = value;
    } else {
      this.#root = insertNode(this.#root, value, value);
      this.#intervalCount++;
    }
    this.#count++;
    return true;
  }

  /** Removes the value; returns false when it was not there. */
  remove(value: bigint): boolean {
    const holder = this.#floor(value);
    if (holder === undefined || holder.high < value) return false;
    if (holder.low === value && holder.high === value) {
      this.#root = deleteNode(this.#root, value);
      this.#intervalCount--;
    } else if (holder.low === value) {
      holder.low = value + 1n;
    } else if (holder.high === value) {
      holder.high = value - 1n;
    } else {
      const high = holder.high;
      holder.high = value - 1n;
      this.#root = insertNode(this.#root, value + 1n, high);
      this.#intervalCount++;
    }
    this.#count--;
    return true;
  }

  /** The lowest value >= `from` that is not in the set. */
  nextAbsent(from: bigint): bigint {
    const holder = this.#floor(from);
    // Intervals are maximal, so the value right after one is never in the set.
    return holder !== undefined && holder.high >= from ? holder.high + 1n : from;
  }

  /** The intervals in ascending order, as [low, high] pairs. */
  *intervals(): Generator<readonly [bigint, bigint], void, undefined> {
    const stack: IntervalNode[] = [];
    let node = this.#root;
    while (node !== undefined || stack.length > 0) {
      while (node !== undefined) {
        stack.push(node);
        node = node.left;
      }
      const next = stack.pop();
      if (next === undefined) return;
      yield [next.low, next.high];
      node = next.right;
    }
  }
}
