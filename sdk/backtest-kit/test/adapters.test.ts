// Runs as the user's process under `runner exec` (the Go test in test/sdk starts it so):
// the adapters, constructed and called as backtest-kit 19.5.0 does, against the runner's
// state API. FIXTURES names the folder of values backtest-kit wrote.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  BreakevenAdapter,
  PartialAdapter,
  RiskAdapter,
  ScheduleAdapter,
  SignalAdapter,
  StateError,
  StrategyAdapter,
  registerAdapters,
  type BacktestKit,
} from "../src/index.js";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(join(process.env.FIXTURES ?? "", name), "utf8")) as unknown;
const [symbol] = (process.env.STRATEGYOPS_SYMBOLS ?? "").split(",");
const strategyName = process.env.STRATEGYOPS_STRATEGY_NAME ?? "";
const exchangeName = process.env.STRATEGYOPS_EXCHANGE_NAME ?? "";
const when = new Date("2026-11-25T21:54:00.000Z");
const signalId = "1af31ee8-c897-4000-a4dc-55369e459000";

test("each kind reads as none before it is written", async () => {
  const signal = new SignalAdapter(symbol, strategyName, exchangeName);
  await signal.waitForInit(true);
  assert.equal(await signal.readSignalData(), null);
  assert.deepEqual(await new RiskAdapter(strategyName, exchangeName).readPositionData(when), []);
  assert.deepEqual(await new PartialAdapter(symbol, strategyName, exchangeName).readPartialData("none", when), {});
});

test("backtest-kit's values round-trip through every kind", async () => {
  const signal = new SignalAdapter(symbol, strategyName, exchangeName);
  await signal.waitForInit(true);
  await signal.writeSignalData(fixture("signal-opened.json") as Record<string, unknown>);
  assert.deepEqual(await signal.readSignalData(), fixture("signal-opened.json"));

  const schedule = new ScheduleAdapter(symbol, strategyName, exchangeName);
  await schedule.waitForInit(true);
  await schedule.writeScheduleData(fixture("schedule-scheduled.json") as Record<string, unknown>);
  assert.deepEqual(await schedule.readScheduleData(), fixture("schedule-scheduled.json"));
  await schedule.writeScheduleData(null); // activation clears it
  assert.equal(await schedule.readScheduleData(), null);

  const strategy = new StrategyAdapter(symbol, strategyName, exchangeName);
  await strategy.waitForInit(true);
  await strategy.writeStrategyData(fixture("strategy-snapshot.json") as Record<string, unknown>);
  assert.deepEqual(await strategy.readStrategyData(), fixture("strategy-snapshot.json"));

  const risk = new RiskAdapter(strategyName, exchangeName);
  await risk.waitForInit(true);
  await risk.writePositionData(fixture("risk-positions.json") as unknown[], when);
  assert.deepEqual(await risk.readPositionData(when), fixture("risk-positions.json"));

  const partial = new PartialAdapter(symbol, strategyName, exchangeName);
  await partial.waitForInit(true);
  await partial.writePartialData(fixture("partial.json") as Record<string, unknown>, signalId, when);
  assert.deepEqual(await partial.readPartialData(signalId, when), fixture("partial.json"));

  const breakeven = new BreakevenAdapter(symbol, strategyName, exchangeName);
  await breakeven.waitForInit(true);
  await breakeven.writeBreakevenData(fixture("breakeven.json") as Record<string, unknown>, signalId, when);
  assert.deepEqual(await breakeven.readBreakevenData(signalId, when), fixture("breakeven.json"));
});

test("a signal row that breaks backtest-kit's rules is refused, and the stored one kept", async () => {
  const signal = new SignalAdapter(symbol, strategyName, exchangeName);
  const bad = { ...(fixture("signal-opened.json") as Record<string, unknown>), position: "sideways" };
  await assert.rejects(signal.writeSignalData(bad), (e: unknown) => {
    assert.ok(e instanceof StateError);
    assert.equal(e.status, 400);
    assert.equal(e.code, "invalid_value");
    assert.match(e.message, /position must be "long" or "short"/);
    return true;
  });
  assert.deepEqual(await signal.readSignalData(), fixture("signal-opened.json"));
});

test("an unbounded lifetime (Infinity, kept as null) reads back as Infinity", async () => {
  const signal = new SignalAdapter(symbol, strategyName, exchangeName);
  const row = { ...(fixture("signal-opened.json") as Record<string, unknown>), minuteEstimatedTime: Infinity };
  await signal.writeSignalData(row);
  assert.equal((await signal.readSignalData())?.minuteEstimatedTime, Infinity);
  await signal.writeSignalData(fixture("signal-opened.json") as Record<string, unknown>);
});

test("another strategy's context is refused", async () => {
  const other = new SignalAdapter(symbol, "someone-else", exchangeName);
  await assert.rejects(other.writeSignalData(null), (e: unknown) => e instanceof StateError && e.status === 403);
});

test("registerAdapters hands backtest-kit one class per kind", () => {
  const got: Record<string, unknown> = {};
  const facade = (name: string) => ({ [`usePersist${name}Adapter`]: (ctor: unknown) => (got[name] = ctor) });
  registerAdapters({
    PersistSignalAdapter: facade("Signal"),
    PersistScheduleAdapter: facade("Schedule"),
    PersistStrategyAdapter: facade("Strategy"),
    PersistRiskAdapter: facade("Risk"),
    PersistPartialAdapter: facade("Partial"),
    PersistBreakevenAdapter: facade("Breakeven"),
  } as unknown as BacktestKit);
  assert.deepEqual(got, {
    Signal: SignalAdapter,
    Schedule: ScheduleAdapter,
    Strategy: StrategyAdapter,
    Risk: RiskAdapter,
    Partial: PartialAdapter,
    Breakeven: BreakevenAdapter,
  });
});
