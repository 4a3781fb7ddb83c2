// Preloaded (`node --import`) by a child process that stands for a machine whose clock is off: `Date.now()` runs
// CLOCK_OFFSET_MS (may be negative) ahead of this machine's. What token-store reads the wall clock with.
const offset = Number(process.env.CLOCK_OFFSET_MS ?? '0')
const real = Date.now
Date.now = () => real() + offset
