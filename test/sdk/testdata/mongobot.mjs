// A bot's read or write of its signal or partial levels through backtest-kit 19.5.0's
// persistence facades with the official @backtest-kit/mongo installed: its MongoDB
// collections, with its Redis cache in front.
//
//   node mongobot.mjs read signal SYMBOL STRATEGY EXCHANGE              prints the value (JSON)
//   node mongobot.mjs write signal SYMBOL STRATEGY EXCHANGE             the value (JSON) on stdin
//   node mongobot.mjs read partial SYMBOL STRATEGY EXCHANGE SIGNAL_ID WHEN_MS
//   node mongobot.mjs write partial SYMBOL STRATEGY EXCHANGE SIGNAL_ID WHEN_MS
//
// The servers come from MONGO_URL, REDIS_HOST, REDIS_PORT and REDIS_PASSWORD.
import { readFileSync } from "node:fs";
import * as bk from "backtest-kit";
import { setup } from "@backtest-kit/mongo";

setup({
  CC_MONGO_CONNECTION_STRING: process.env.MONGO_URL,
  CC_REDIS_HOST: process.env.REDIS_HOST,
  CC_REDIS_PORT: Number(process.env.REDIS_PORT),
  CC_REDIS_PASSWORD: process.env.REDIS_PASSWORD ?? "",
});

const [op, kind, symbol, strategyName, exchangeName, signalId, whenMs] = process.argv.slice(2);
const when = new Date(Number(whenMs ?? Date.now()));
const input = () => JSON.parse(readFileSync(0, "utf8"));
let out;
if (kind === "signal" && op === "read") {
  out = await bk.PersistSignalAdapter.readSignalData(symbol, strategyName, exchangeName);
} else if (kind === "signal" && op === "write") {
  await bk.PersistSignalAdapter.writeSignalData(input(), symbol, strategyName, exchangeName);
} else if (kind === "partial" && op === "read") {
  out = await bk.PersistPartialAdapter.readPartialData(symbol, strategyName, signalId, exchangeName, when);
} else if (kind === "partial" && op === "write") {
  await bk.PersistPartialAdapter.writePartialData(input(), symbol, strategyName, signalId, exchangeName, when);
} else {
  console.error("usage: node mongobot.mjs read|write signal|partial SYMBOL STRATEGY EXCHANGE [SIGNAL_ID WHEN_MS]");
  process.exit(2);
}
if (op === "read") {
  console.log(JSON.stringify(out ?? null));
}
process.exit(0); // the package's connections keep a process alive
