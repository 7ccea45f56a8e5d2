// Prints the numbers internal/live's tests expect, computed by backtest-kit 19.5.0's own
// functions. It needs the published package's bundle:
//
//   npm pack backtest-kit@19.5.0 && tar xzf backtest-kit-19.5.0.tgz
//   node hack/backtest-kit-values.mjs package/build/index.mjs
//
// The bundle's other imports (di-kit, functools-kit) are not needed: the functions used
// here are pure, so they are cut out of the bundle by name and evaluated on their own.
import fs from 'fs';

const bundle = fs.readFileSync(process.argv[2], 'utf8');
const wanted = ['GLOBAL_CONFIG', 'LIQUIDATION_PNL_PERCENT', 'PARTIAL_OVERCLOSE_RELATIVE_TOLERANCE',
  'weightedHarmonicMean', 'computeEffectivePriceAtPartial', 'getEffectivePriceOpen', 'toProfitLossDto',
  'getLiquidationPrice', 'GET_AVG_PRICE_FN'];

// definition returns the top-level `const name = ...` of the bundle: up to the closing
// `};` of a function or object, else to the end of its line.
function definition(name) {
  const start = bundle.indexOf(`\nconst ${name} = `);
  if (start < 0) throw new Error(`backtest-kit's bundle has no ${name}`);
  const lineEnd = bundle.indexOf('\n', start + 1);
  const line = bundle.slice(start, lineEnd);
  if (!line.includes('=>') && !line.trimEnd().endsWith('{')) return line + '\n';
  return bundle.slice(start, bundle.indexOf('\n};\n', start) + 4);
}
const lib = new Function(wanted.map(definition).join('') + `return {${wanted.join(',')}};`)();

const row = (position, priceOpen, extra = {}) => ({ position, priceOpen, cost: 100, multiplier: 1, isolated: true,
  _entry: [{ price: priceOpen, cost: 100, timestamp: 0 }], ...extra });
const candle = (high, low, close, volume) => ({ high, low, close, volume });
const dca = row('long', 100, { _entry: [{ price: 100, cost: 100, timestamp: 0 }, { price: 95, cost: 50, timestamp: 1 }] });
const partial = row('long', 100, {
  _entry: [{ price: 100, cost: 100, timestamp: 0 }, { price: 90, cost: 100, timestamp: 1 }],
  _partial: [
    { type: 'profit', percent: 25, entryCountAtClose: 1, currentPrice: 104, costBasisAtClose: 100, timestamp: 2 },
    { type: 'loss', percent: 50, currentPrice: 91, entryCountAtClose: 2, costBasisAtClose: 175, timestamp: 3 }],
});
const out = {
  'long at take profit': lib.toProfitLossDto(row('long', 100), 101.5),
  'long at stop loss': lib.toProfitLossDto(row('long', 100), 98.5),
  'short at take profit': lib.toProfitLossDto(row('short', 2500), 2450),
  'short at stop loss': lib.toProfitLossDto(row('short', 2500), 2540.25),
  'two fills': lib.toProfitLossDto(dca, 103),
  'two partial closes': lib.toProfitLossDto(partial, 99),
  'multiplier 10': lib.toProfitLossDto(row('long', 100, { multiplier: 10 }), 97),
  'liquidation long x1': lib.getLiquidationPrice(row('long', 100)),
  'liquidation long x10': lib.getLiquidationPrice(row('long', 100, { multiplier: 10 })),
  'liquidation short x5': lib.getLiquidationPrice(row('short', 100, { multiplier: 5 })),
  'VWAP': lib.GET_AVG_PRICE_FN([candle(101, 99, 100.5, 10), candle(102, 100, 101.7, 30), candle(101.9, 100.2, 100.9, 5),
    candle(101.3, 100.1, 101.1, 12.5), candle(101.6, 100.8, 101.4, 7)]),
  'VWAP, no volume': lib.GET_AVG_PRICE_FN([candle(1, 1, 100.1, 0), candle(1, 1, 100.2, 0), candle(1, 1, 100.4, 0),
    candle(1, 1, 99.9, 0), candle(1, 1, 100.05, 0)]),
};
console.log(JSON.stringify(out, null, 1));

// An earlier version's partial close, without entryCountAtClose (slice(0, undefined): all
// fills count).
const older = row('long', 100, {
  _entry: [{ price: 100, cost: 100, timestamp: 0 }, { price: 90, cost: 100, timestamp: 1 }],
  _partial: [{ type: 'profit', percent: 25, currentPrice: 104, costBasisAtClose: 200, timestamp: 2 }],
});
console.log(JSON.stringify({ 'partial close without entryCountAtClose': lib.toProfitLossDto(older, 99) }, null, 1));
