// Free loopback ports and polling for the tests: src/dev/ports.ts, which the
// benchmarks share (bench/ may not import test/).
export { freePort, waitFor } from '../../src/dev/ports';
