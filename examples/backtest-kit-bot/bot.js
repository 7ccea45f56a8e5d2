// A backtest-kit 19.5.0 bot whose crash state lives in strategy-operator's store. It runs
// as a Strategy's command, under runner exec, which gives it the state API and names its
// strategy, exchange and symbols (STRATEGYOPS_STRATEGY_NAME, _EXCHANGE_NAME, _SYMBOLS).
// Its exchange is a simulated feed, a price that climbs from 100 to 350 over 1,000 minutes
// and starts again: put your exchange's candles in getCandles.
import * as bk from "backtest-kit";
import { registerAdapters } from "@strategyops/backtest-kit";

// Signals, schedules, snapshots, risk positions, partial and breakeven levels go to the
// operator's store, under the runner's Lease; backtest-kit keeps its other files (candle
// cache, reports) under ./dump, so run the bot in a writable folder.
registerAdapters(bk);

const strategyName = process.env.STRATEGYOPS_STRATEGY_NAME;
const exchangeName = process.env.STRATEGYOPS_EXCHANGE_NAME;
const symbols = (process.env.STRATEGYOPS_SYMBOLS ?? "").split(",").filter(Boolean);
if (!strategyName || !exchangeName || symbols.length === 0) {
  console.error("bot.js runs under runner exec, which names its strategy, exchange and symbols");
  process.exit(2);
}

const MINUTE = 60_000;
const priceAt = (t) => 100 * (1 + 0.0025 * (Math.floor(t / MINUTE) % 1000));

bk.addExchangeSchema({
  exchangeName,
  getCandles: async (_symbol, _interval, since, limit) =>
    Array.from({ length: limit }, (_, i) => {
      const timestamp = since.getTime() + i * MINUTE;
      const open = priceAt(timestamp);
      const close = priceAt(timestamp + MINUTE - 1);
      return { timestamp, open, high: Math.max(open, close), low: Math.min(open, close), close, volume: 10 };
    }),
  formatPrice: async (_symbol, price) => price.toFixed(2),
  formatQuantity: async (_symbol, quantity) => quantity.toFixed(6),
});

// Its positions are checked and kept under a risk profile, here the first the Strategy lists
// (spec.riskProfiles; the runner names them in STRATEGYOPS_RISK_PROFILES, by default one
// named after the strategy): at most three open at once.
const [riskName] = (process.env.STRATEGYOPS_RISK_PROFILES || strategyName).split(",");
bk.addRiskSchema({
  riskName,
  validations: [({ activePositionCount }) => (activePositionCount >= 3 ? "three positions are open" : null)],
});

// A long signal whenever none is open: take profit 1 % up, stop loss 1 % down, an hour at most.
bk.addStrategySchema({
  strategyName,
  riskName,
  interval: "1m",
  getSignal: async (_symbol, _when, price) => ({
    position: "long",
    priceTakeProfit: price * 1.01,
    priceStopLoss: price * 0.99,
    minuteEstimatedTime: 60,
    note: "the simulated feed climbs",
  }),
});

bk.listenSignalLive((e) => {
  if (e.action === "opened" || e.action === "closed" || e.action === "cancelled") {
    console.log(JSON.stringify({ bot: e.action, symbol: e.symbol, id: e.signal.id, priceOpen: e.signal.priceOpen,
      reason: e.closeReason ?? e.reason, pnl: e.pnl }));
  }
});

for (const symbol of symbols) {
  bk.Live.background(symbol, { strategyName, exchangeName });
}
console.log(JSON.stringify({ bot: "started", strategyName, exchangeName, symbols }));
