// Time-valued attributes (reference §4.1): a number with an optional unit `d h m s ms us`; a bare
// number is in the attribute's own unit. A value in another unit is converted to the attribute's
// unit and rounded; a non-zero value that rounds to 0 is rejected with the reference's wording:
// `invalid value '500ms' for the attribute boot_delay (expected time unit: 's')`.
//
// Rounding is to the nearest integer, ties to even: the reference says "rounded" and its one
// example (500ms for a unit of seconds gives 0) rules out rounding ties away from zero.
// Arithmetic is exact (BigInt) so `1.5h` in microseconds never drifts.

export type TimeUnit = 'd' | 'h' | 'm' | 's' | 'ms' | 'us';

export const timeUnits: readonly TimeUnit[] = ['d', 'h', 'm', 's', 'ms', 'us'];

const microsecondsPerUnit: Record<TimeUnit, bigint> = {
  d: 86_400_000_000n,
  h: 3_600_000_000n,
  m: 60_000_000n,
  s: 1_000_000n,
  ms: 1_000n,
  us: 1n,
};

/** Values are C ints in the original product; larger ones are mistakes, not durations. */
export const durationValueMax = 2_147_483_647;

export type DurationResult =
  | { readonly ok: true; readonly value: number; readonly unit: TimeUnit }
  | { readonly ok: false; readonly message: string };

export interface DurationRule {
  readonly unit: TimeUnit;
  /** Whether 0 is a meaningful value (e.g. `loop_interval="0"` disables the counter). */
  readonly zeroAllowed: boolean;
}

/** Number of microseconds in one `unit`, for converting a parsed value to another unit. */
export function microsecondsOf(unit: TimeUnit): number {
  return Number(microsecondsPerUnit[unit]);
}

function roundHalfEven(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  const remainder = numerator % denominator;
  const twice = remainder * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) return quotient + 1n;
  return quotient;
}

export function parseDuration(raw: string, attribute: string, rule: DurationRule): DurationResult {
  const text = raw.trim();
  const match = /^(\d{1,15})(?:\.(\d{1,9}))?(d|h|ms|m|s|us)?$/.exec(text);
  if (match === null) {
    return {
      ok: false,
      message: `invalid value '${raw}' for the attribute ${attribute} (expected a number with an optional unit d, h, m, s, ms or us; a bare number is in ${rule.unit})`,
    };
  }
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  const unit = (match[3] ?? rule.unit) as TimeUnit;
  const mantissa = BigInt(whole + fraction);
  const scale = 10n ** BigInt(fraction.length);
  const value = roundHalfEven(mantissa * microsecondsPerUnit[unit], scale * microsecondsPerUnit[rule.unit]);
  if (value === 0n && mantissa !== 0n) {
    return {
      ok: false,
      message: `invalid value '${raw}' for the attribute ${attribute} (expected time unit: '${rule.unit}')`,
    };
  }
  if (value === 0n && !rule.zeroAllowed) {
    return {
      ok: false,
      message: `invalid value '${raw}' for the attribute ${attribute} (must be greater than 0)`,
    };
  }
  if (value > BigInt(durationValueMax)) {
    return {
      ok: false,
      message: `invalid value '${raw}' for the attribute ${attribute} (too large: at most ${durationValueMax}${rule.unit})`,
    };
  }
  return { ok: true, value: Number(value), unit: rule.unit };
}

/** `700ms`, `24h`: a value in its unit, as hakit writes effective configurations. */
export function formatDuration(value: number, unit: TimeUnit): string {
  return `${value}${unit}`;
}
