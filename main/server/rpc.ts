// The one dispatcher both transports use: a method name from the contract's allow-list, one params
// object, the service's answer or an error shape that says what failed (never a stack).
import type { ConsoleApi, ConsoleErrorShape } from '../api/contract.ts';
import { methodNames } from '../api/contract.ts';
import { ConsoleError } from '../services/errors.ts';

const allowed: ReadonlySet<string> = new Set(methodNames);

export class RpcError extends Error {
  constructor(readonly shape: ConsoleErrorShape) {
    super(shape.message);
  }
}

export function errorShape(error: unknown, redact: (text: string) => string): ConsoleErrorShape {
  if (error instanceof ConsoleError) return { code: error.code, message: redact(error.message) };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal', message: redact(message) };
}

export async function dispatch(
  api: ConsoleApi,
  method: unknown,
  params: unknown,
  redact: (text: string) => string,
  log: (message: string) => void,
): Promise<unknown> {
  if (typeof method !== 'string' || !allowed.has(method))
    throw new RpcError({
      code: 'bad-input',
      message: `unknown console method ${String(method).slice(0, 64)}`,
    });
  const args = params === undefined || params === null ? {} : params;
  if (typeof args !== 'object' || Array.isArray(args))
    throw new RpcError({ code: 'bad-input', message: `${method}: params must be an object` });
  const call = api[method as keyof ConsoleApi] as (this: ConsoleApi, value: unknown) => Promise<unknown>;
  try {
    return await call.call(api, args);
  } catch (error) {
    const shape = errorShape(error, redact);
    if (shape.code === 'internal') log(`${method} failed: ${shape.message}`);
    throw new RpcError(shape);
  }
}
