// Writes a signal row N times with backtest-kit's own file persistence, in the working
// folder (./dump/…), over KEYS symbols written side by side (one loop of awaited writes
// each), and prints the writes per second it kept: the baseline the file store's
// benchmarks are measured against (make bench).
//
//   node bkbench.mjs N KEYS
import { PersistSignalAdapter } from "backtest-kit";

const [n, keys] = process.argv.slice(2).map(Number);
PersistSignalAdapter.useJson();
const note = "x".repeat(1200);
const row = (i) => ({ id: "1af31ee8-c897-4000-a4dc-55369e459000", priceOpen: 100 + i, note });
// One write per key first, outside the timing: backtest-kit makes each key's folder then.
await Promise.all(Array.from({ length: keys }, (_, k) =>
  PersistSignalAdapter.writeSignalData(row(0), `KEY${k}USDT`, "bench", "binance")));
const start = process.hrtime.bigint();
await Promise.all(Array.from({ length: keys }, async (_, k) => {
  for (let i = k; i < n; i += keys) {
    await PersistSignalAdapter.writeSignalData(row(i), `KEY${k}USDT`, "bench", "binance");
  }
}));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ writes: n, seconds, rate: n / seconds }));
