import assert from "node:assert/strict";
import { parseDenoTestSummary } from "./run.ts";

Deno.test("parseDenoTestSummary reads deno test's closing line", () => {
  const cases: ReadonlyArray<[string, { passed: number; failed: number } | undefined]> = [
    ["ok | 12 passed | 0 failed (3s)", { passed: 12, failed: 0 }],
    ["\x1b[0m\x1b[32mok\x1b[0m | 4 passed (7 steps) | 0 failed | 2 ignored", {
      passed: 4,
      failed: 0,
    }],
    ["FAILED | 3 passed | 2 failed (1 step) (9s)", { passed: 3, failed: 2 }],
    ["some output\nok | 1 passed | 0 failed\nFAILED | 5 passed | 1 failed", {
      passed: 5,
      failed: 1,
    }],
    ["no summary here", undefined],
  ];
  for (const [output, expected] of cases) {
    assert.deepEqual(parseDenoTestSummary(output), expected, output);
  }
});
