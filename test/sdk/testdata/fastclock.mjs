// Preloaded with node --import: the process's clock runs FAST_CLOCK_FACTOR times faster
// than the wall's. Date.now() and new Date() read
// FAST_CLOCK_ORIGIN + (wall time - FAST_CLOCK_START) * FAST_CLOCK_FACTOR (milliseconds), so
// every process of one test, a restarted one too, reads the same clock.
const WallDate = Date;
const factor = Number(process.env.FAST_CLOCK_FACTOR);
const start = Number(process.env.FAST_CLOCK_START);
const origin = Number(process.env.FAST_CLOCK_ORIGIN);
if (!(factor > 0) || !Number.isFinite(start) || !Number.isFinite(origin)) {
  throw new Error("fastclock.mjs needs FAST_CLOCK_FACTOR, FAST_CLOCK_START and FAST_CLOCK_ORIGIN");
}
const now = () => Math.floor(origin + (WallDate.now() - start) * factor);

class FastDate extends WallDate {
  constructor(...args) {
    if (args.length === 0) {
      super(now());
    } else {
      super(...args);
    }
  }

  static now() {
    return now();
  }
}

globalThis.Date = FastDate;
