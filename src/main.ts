// Entry point: hands argv to the CLI and exits with its code.

import { quietOnClosedOutput } from './cli/closed-output.js';
import { main } from './cli/index.js';

quietOnClosedOutput();
const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
process.exitCode = code;
