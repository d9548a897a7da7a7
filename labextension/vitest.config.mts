// Unit tests of the sidebar's pure logic (no browser): `npm test`.
import { defineConfig } from 'vitest/config';
import type { Reporter } from 'vitest/reporters';

/**
 * A closing line after vitest's summary, for CI logs:
 * "TypeScript tests: 25 passed, 0 failed".
 */
const closingLine: Reporter = {
  onFinished(files, errors) {
    const counts = { pass: 0, fail: 0, skip: 0 };
    const walk = (tasks: typeof files): void => {
      for (const task of tasks) {
        if (task.type === 'suite' || task.type === 'module') {
          walk(task.tasks as typeof files);
        } else {
          const state = task.result?.state;
          counts[state === 'pass' ? 'pass' : state === 'fail' ? 'fail' : 'skip']++;
        }
      }
    };
    walk(files);
    const failed = counts.fail + errors.length;
    const skipped = counts.skip ? `, ${counts.skip} skipped` : '';
    console.log(`TypeScript tests: ${counts.pass} passed, ${failed} failed${skipped}`);
  }
};

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    reporters: ['default', closingLine]
  }
});
