// Jest reporter: when LOPT_TEST_SUMMARY_DIR is set, writes this project's pass/fail counts there,
// so .ci/run can print one total line across all Nx projects.
const fs = require('fs');
const path = require('path');

class SummaryReporter {
  constructor(globalConfig) {
    this.globalConfig = globalConfig;
  }
  onRunComplete(_contexts, results) {
    const dir = process.env.LOPT_TEST_SUMMARY_DIR;
    if (!dir) return;
    fs.mkdirSync(dir, { recursive: true });
    const name = (this.globalConfig.rootDir || 'project').replace(/[^A-Za-z0-9]+/g, '_');
    const failedSuites = results.testResults.filter((r) => r.testExecError || r.failureMessage && r.numFailingTests === 0).length;
    fs.writeFileSync(
      path.join(dir, `${name}.json`),
      JSON.stringify({
        rootDir: this.globalConfig.rootDir,
        passed: results.numPassedTests,
        failed: results.numFailedTests + failedSuites,
        total: results.numTotalTests,
      }),
    );
  }
}
module.exports = SummaryReporter;
