// A reader that stopped early (`ferry status | head -2`) is not an error: the CLI stops quietly, as other tools do.

export function quietOnClosedOutput(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
}
