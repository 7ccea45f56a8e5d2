// A bot's view of the database through backtest-kit's PostgreSQL package (@backtest-kit/pg,
// which the npm registry does not serve): real TypeORM 0.3 with entity schemas equal to the
// package's for the six crash-state kinds, its DataSource synchronized at start as the
// package's is (synchronize: true), and its reads and upserts.
//
//   node bot.mjs URL read KIND CONTEXT_JSON            prints the stored value (JSON)
//   node bot.mjs URL write KIND CONTEXT_JSON VALUE_JSON [WHEN_MS]
//
// KIND is signal, schedule, strategy, risk, partial or breakeven; CONTEXT_JSON its fields
// ({symbol, strategyName, exchangeName[, signalId]}, or {riskName, exchangeName}).
import "reflect-metadata";
import { DataSource, EntitySchema } from "typeorm";

const text = { type: String };
const stamps = {
  createDate: { type: "timestamptz", createDate: true },
  updatedDate: { type: "timestamptz", updateDate: true },
};
// when is a bigint column the package reads back as a number.
const when = { type: "bigint", transformer: { to: (v) => v, from: (v) => (v == null ? v : Number(v)) } };
const symbolScope = ["symbol", "strategyName", "exchangeName"];

function entity(table, scope, value, extra = {}) {
  const columns = { id: { type: "uuid", primary: true, generated: "uuid" } };
  for (const name of scope) columns[name] = text;
  Object.assign(columns, value, extra, stamps);
  return new EntitySchema({
    name: table,
    columns,
    indices: [{ name: table.replaceAll("-", "_") + "_uq", columns: scope, unique: true }],
  });
}

const kinds = {
  signal: { schema: entity("signal-items", symbolScope, { payload: { type: "jsonb", nullable: true } }), field: "payload" },
  schedule: { schema: entity("schedule-items", symbolScope, { payload: { type: "jsonb", nullable: true } }), field: "payload" },
  strategy: { schema: entity("strategy-items", symbolScope, { payload: { type: "jsonb", nullable: true } }), field: "payload" },
  risk: { schema: entity("risk-items", ["riskName", "exchangeName"], { positions: { type: "jsonb" } }, { when }), field: "positions", timed: true },
  partial: { schema: entity("partial-items", [...symbolScope, "signalId"], { payload: { type: "jsonb" } }, { when }), field: "payload", timed: true },
  breakeven: { schema: entity("breakeven-items", [...symbolScope, "signalId"], { payload: { type: "jsonb" } }, { when }), field: "payload", timed: true },
};

const [url, op, kindName, contextJSON, valueJSON, whenMs] = process.argv.slice(2);
const kind = kinds[kindName];
if (!url || !kind || !["read", "write"].includes(op)) {
  console.error("usage: node bot.mjs URL read|write KIND CONTEXT_JSON [VALUE_JSON [WHEN_MS]]");
  process.exit(2);
}
const context = JSON.parse(contextJSON);
const source = new DataSource({
  type: "postgres",
  url,
  entities: Object.values(kinds).map((k) => k.schema),
  synchronize: true, // as the package: the schema is synchronized at every start
  logging: false,
});
await source.initialize();
const repo = source.getRepository(kind.schema);
if (op === "read") {
  const row = await repo.findOne({ where: context });
  console.log(JSON.stringify(row ? row[kind.field] : null));
} else {
  const row = { ...context, [kind.field]: JSON.parse(valueJSON) };
  const overwrite = [kind.field];
  if (kind.timed) {
    row.when = Number(whenMs ?? Date.now());
    overwrite.push("when");
  }
  await repo.createQueryBuilder().insert().values(row).orUpdate(overwrite, Object.keys(context)).execute();
}
await source.destroy();
