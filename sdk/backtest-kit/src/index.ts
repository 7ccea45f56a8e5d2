// Adapters that keep a backtest-kit bot's crash state in strategy-operator's stores: one
// class per crash-state kind, shaped as backtest-kit 19.5.0 constructs and calls them
// (Persist<Kind>Adapter.usePersist<Kind>Adapter), talking to runner exec's state API. Every
// write goes through the runner's fencing token; once another runner holds the strategy, a
// write fails with StateError (code "fenced") and runner exec stops this process.
import { StateClient, type Context } from "./client.js";

export { StateClient, StateError, SOCKET_ENV, type Kind, type Context } from "./client.js";

let shared: StateClient | undefined;

/** The client the adapters use: on STRATEGYOPS_STATE_SOCKET unless set with useStateClient. */
function client(): StateClient {
  shared ??= new StateClient();
  return shared;
}

/** Makes the adapters use c (tests, a socket named otherwise). */
export function useStateClient(c: StateClient): void {
  shared = c;
}

/** A signal or schedule row, as backtest-kit keeps it (its fields are its own). */
export type SignalRow = Record<string, unknown>;

abstract class StrategyScoped {
  protected readonly ctx: Context;
  constructor(symbol: string, strategyName: string, exchangeName: string) {
    this.ctx = { symbol, strategyName, exchangeName };
  }
  /** Nothing to prepare: the runner made the store. */
  async waitForInit(_initial: boolean): Promise<void> {}
}

/**
 * A row as read back: JSON keeps an unbounded lifetime (minuteEstimatedTime: Infinity) as
 * null, and backtest-kit's own reader restores it.
 */
function restored(row: SignalRow | null): SignalRow | null {
  if (row && row.minuteEstimatedTime === null) {
    return { ...row, minuteEstimatedTime: Infinity };
  }
  return row;
}

/** The active signal of a symbol (backtest-kit's IPersistSignalInstance). */
export class SignalAdapter extends StrategyScoped {
  async readSignalData(): Promise<SignalRow | null> {
    const e = await client().get("signal", this.ctx, (this.ctx as { symbol: string }).symbol);
    return restored((e?.value as SignalRow | null) ?? null);
  }
  async writeSignalData(row: SignalRow | null): Promise<void> {
    await client().put("signal", this.ctx, (this.ctx as { symbol: string }).symbol, row);
  }
}

/** The scheduled (limit-entry) signal of a symbol (IPersistScheduleInstance). */
export class ScheduleAdapter extends StrategyScoped {
  async readScheduleData(): Promise<SignalRow | null> {
    const e = await client().get("schedule", this.ctx, (this.ctx as { symbol: string }).symbol);
    return restored((e?.value as SignalRow | null) ?? null);
  }
  async writeScheduleData(row: SignalRow | null): Promise<void> {
    await client().put("schedule", this.ctx, (this.ctx as { symbol: string }).symbol, row);
  }
}

/** The write-ahead snapshot of a strategy on a symbol (IPersistStrategyInstance). */
export class StrategyAdapter extends StrategyScoped {
  async readStrategyData(): Promise<Record<string, unknown> | null> {
    const e = await client().get("strategy", this.ctx, "strategy");
    return (e?.value as Record<string, unknown> | null) ?? null;
  }
  async writeStrategyData(snapshot: Record<string, unknown>): Promise<void> {
    await client().put("strategy", this.ctx, "strategy", snapshot);
  }
}

/** The positions of a risk profile: [key, position] pairs (IPersistRiskInstance). */
export class RiskAdapter {
  protected readonly ctx: Context;
  constructor(riskName: string, exchangeName: string) {
    this.ctx = { riskName, exchangeName };
  }
  async waitForInit(_initial: boolean): Promise<void> {}
  async readPositionData(_when?: Date): Promise<unknown[]> {
    const e = await client().get("risk", this.ctx, "positions");
    return (e?.value as unknown[] | null) ?? [];
  }
  async writePositionData(pairs: unknown[], when?: Date): Promise<void> {
    await client().put("risk", this.ctx, "positions", pairs, undefined, when);
  }
}

/** The partial profit and loss levels a signal reached (IPersistPartialInstance). */
export class PartialAdapter extends StrategyScoped {
  async readPartialData(signalId: string, _when?: Date): Promise<Record<string, unknown>> {
    const e = await client().get("partial", this.ctx, signalId);
    return (e?.value as Record<string, unknown> | null) ?? {};
  }
  async writePartialData(data: Record<string, unknown>, signalId: string, when?: Date): Promise<void> {
    await client().put("partial", this.ctx, signalId, data, undefined, when);
  }
}

/** Whether a signal reached breakeven (IPersistBreakevenInstance). */
export class BreakevenAdapter extends StrategyScoped {
  async readBreakevenData(signalId: string, _when?: Date): Promise<Record<string, unknown>> {
    const e = await client().get("breakeven", this.ctx, signalId);
    return (e?.value as Record<string, unknown> | null) ?? {};
  }
  async writeBreakevenData(data: Record<string, unknown>, signalId: string, when?: Date): Promise<void> {
    await client().put("breakeven", this.ctx, signalId, data, undefined, when);
  }
}

/** The part of backtest-kit's exports registerAdapters needs: its six crash-state facades. */
export interface BacktestKit {
  PersistSignalAdapter: { usePersistSignalAdapter(ctor: unknown): void };
  PersistScheduleAdapter: { usePersistScheduleAdapter(ctor: unknown): void };
  PersistStrategyAdapter: { usePersistStrategyAdapter(ctor: unknown): void };
  PersistRiskAdapter: { usePersistRiskAdapter(ctor: unknown): void };
  PersistPartialAdapter: { usePersistPartialAdapter(ctor: unknown): void };
  PersistBreakevenAdapter: { usePersistBreakevenAdapter(ctor: unknown): void };
}

/**
 * Registers the six adapters with backtest-kit: `registerAdapters(await import("backtest-kit"))`.
 * The other kinds stay on backtest-kit's own files (see the README).
 */
export function registerAdapters(bk: BacktestKit): void {
  bk.PersistSignalAdapter.usePersistSignalAdapter(SignalAdapter);
  bk.PersistScheduleAdapter.usePersistScheduleAdapter(ScheduleAdapter);
  bk.PersistStrategyAdapter.usePersistStrategyAdapter(StrategyAdapter);
  bk.PersistRiskAdapter.usePersistRiskAdapter(RiskAdapter);
  bk.PersistPartialAdapter.usePersistPartialAdapter(PartialAdapter);
  bk.PersistBreakevenAdapter.usePersistBreakevenAdapter(BreakevenAdapter);
}
