// Prints the closing line CI reads: "N passed, N failed, N skipped".
// A test that never ran because a hook of its suite or module failed (a daemon that would not
// start in beforeAll) counts as failed, not skipped; so does a module that failed to load.
import type { Reporter, TestModule, TestSuite } from 'vitest/node';

function hookFailed(s: TestSuite | TestModule): boolean {
  return s.errors().length > 0;
}

export default class SummaryLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      let modFailed = 0;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') {
          failed++;
          modFailed++;
        } else {
          // skipped/pending: a failed hook on the way up means it was prevented, not skipped
          let p: TestSuite | TestModule = test.parent;
          let prevented = false;
          for (;;) {
            if (hookFailed(p)) prevented = true;
            if (p.type === 'module') break;
            p = p.parent;
          }
          if (prevented) {
            failed++;
            modFailed++;
          } else skipped++;
        }
      }
      // e.g. an import error: no test ran at all
      if (modFailed === 0 && (hookFailed(mod) || mod.state() === 'failed')) failed++;
    }
    failed += unhandledErrors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
