// A client of runner exec's state API (strategy-operator's pkg/stateapi): HTTP on the Unix
// socket named by STRATEGYOPS_STATE_SOCKET.
import { request } from "node:http";

/** The crash-state kinds the state API serves. */
export type Kind = "signal" | "schedule" | "strategy" | "risk" | "partial" | "breakeven";

/** A store's context, named by backtest-kit's parts. */
export type Context =
  | { symbol: string; strategyName: string; exchangeName: string }
  | { riskName: string; exchangeName: string };

/** An error the state API answered with: its HTTP status and code (fenced, conflict, …). */
export class StateError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "StateError";
  }
}

/** The environment variable runner exec names its socket in. */
export const SOCKET_ENV = "STRATEGYOPS_STATE_SOCKET";

interface Answer {
  status: number;
  etag?: string;
  body: string;
}

/** StateClient reads and writes the strategy's state through runner exec. */
export class StateClient {
  constructor(readonly socketPath: string = socketFromEnv()) {}

  private call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            etag: res.headers.etag,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      });
      req.on("error", reject);
      if (body !== undefined) {
        req.setHeader("Content-Type", "application/json");
        req.end(body);
      } else {
        req.end();
      }
    });
  }

  /** The value at key and its revision, or undefined when the key holds none. */
  async get(kind: Kind, ctx: Context, key: string): Promise<{ value: unknown; revision: string } | undefined> {
    const a = await this.call("GET", path(kind, ctx, key));
    if (a.status === 404 && codeOf(a) === "not_found") {
      return undefined;
    }
    check(a, 200);
    return { value: JSON.parse(a.body), revision: a.etag ?? "" };
  }

  /**
   * Stores value at key (only at revision ifMatch, when given) and returns the new revision.
   * when is the time the value belongs to (backtest-kit's when): a database backend keeps it
   * in its rows' when field; without it, the write's own time is kept.
   */
  async put(kind: Kind, ctx: Context, key: string, value: unknown, ifMatch?: string, when?: Date): Promise<string> {
    const headers: Record<string, string> = ifMatch ? { "If-Match": ifMatch } : {};
    const extra = when ? `&when=${when.getTime()}` : "";
    const a = await this.call("PUT", path(kind, ctx, key) + extra, JSON.stringify(value), headers);
    check(a, 204);
    return a.etag ?? "";
  }

  /** Removes key; false when it held nothing. */
  async remove(kind: Kind, ctx: Context, key: string): Promise<boolean> {
    const a = await this.call("DELETE", path(kind, ctx, key));
    if (a.status === 404 && codeOf(a) === "not_found") {
      return false;
    }
    check(a, 204);
    return true;
  }

  /** The keys of a store, sorted as backtest-kit sorts them. */
  async keys(kind: Kind, ctx: Context): Promise<string[]> {
    const a = await this.call("GET", path(kind, ctx, ""));
    check(a, 200);
    return (JSON.parse(a.body) as { keys: string[] }).keys;
  }
}

function socketFromEnv(): string {
  const s = process.env[SOCKET_ENV];
  if (!s) {
    throw new Error(`${SOCKET_ENV} is not set: run this process under \`runner exec -- …\``);
  }
  return s;
}

function path(kind: Kind, ctx: Context, key: string): string {
  const q = new URLSearchParams(ctx as Record<string, string>).toString();
  return `/v1/${kind}/${encodeURIComponent(key)}?${q}`;
}

function codeOf(a: Answer): string {
  try {
    return (JSON.parse(a.body) as { code?: string }).code ?? "";
  } catch {
    return "";
  }
}

function check(a: Answer, want: number): void {
  if (a.status === want) {
    return;
  }
  let code = "";
  let message = a.body;
  try {
    const e = JSON.parse(a.body) as { code?: string; error?: string };
    code = e.code ?? "";
    message = e.error ?? a.body;
  } catch {
    // not the API's JSON: keep the body
  }
  throw new StateError(a.status, code, `state API: ${a.status} ${code}: ${message}`);
}
