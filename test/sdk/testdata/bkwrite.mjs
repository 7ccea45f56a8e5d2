// Writes the signal row on stdin with backtest-kit's own file persistence, in the working
// folder (./dump/…), as a bot without strategy-operator would: the test compares it with
// what the operator's File store holds for the same row.
import { PersistSignalAdapter } from "backtest-kit";

const [symbol, strategyName, exchangeName] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const row = JSON.parse(Buffer.concat(chunks).toString("utf8"));
PersistSignalAdapter.useJson();
await PersistSignalAdapter.writeSignalData(row, symbol, strategyName, exchangeName);
