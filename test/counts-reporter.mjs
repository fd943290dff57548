// A node:test reporter that only counts: tests passed, failed and skipped (suites are not
// counted). test/run.ts reads what it writes to make the one closing summary line.
export default async function* countsReporter(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data;
    if (data.details?.type === 'suite') continue;
    if (data.skip !== undefined || data.todo !== undefined) counts.skipped += 1;
    else if (event.type === 'test:pass') counts.passed += 1;
    else {
      counts.failed += 1;
      counts.failures.push(`${data.file ?? '?'}: ${data.name}`);
    }
  }
  yield `${JSON.stringify(counts)}\n`;
}
