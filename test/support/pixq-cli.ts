// Runs the pixq CLI from source, so process tests exercise the code under test without a build step.
import { main } from '../../src/cli/main.js';

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
