import { z } from 'zod';

/** Schemas registered here hold secrets (passwords, keys): never logged, never in clear in events. */
export const secretRegistry = z.registry<{ secret: true }>();

/** Marks a schema as secret: `password: secret(z.string().min(8))`. */
export const secret = <S extends z.ZodType>(schema: S): S => {
  secretRegistry.add(schema, { secret: true });
  return schema;
};

export const isSecret = (schema: z.ZodType): boolean => secretRegistry.get(schema)?.secret === true;

export const REDACTED = '[redacted]';

const unwrap = (s: z.ZodType): z.ZodType => {
  let cur = s;
  for (;;) {
    if (isSecret(cur)) return cur;
    const def = (cur as unknown as { def?: { type?: string; innerType?: z.ZodType } }).def;
    if (def?.innerType && (def.type === 'optional' || def.type === 'default' || def.type === 'nullable'))
      cur = def.innerType;
    else return cur;
  }
};

/**
 * Replaces every secret field of `value` (as described by `schema`) with `replace(value, path)`.
 * Walks objects, arrays and records; other values pass through unchanged.
 */
export const mapSecrets = (
  schema: z.ZodType,
  value: unknown,
  replace: (v: unknown, path: string) => unknown,
  path = '$',
): unknown => {
  const s = unwrap(schema);
  if (isSecret(s)) return value === undefined ? value : replace(value, path);
  const def = (
    s as unknown as {
      def: { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; valueType?: z.ZodType };
    }
  ).def;
  if (def.type === 'object' && def.shape && value && typeof value === 'object' && !Array.isArray(value)) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [k, sub] of Object.entries(def.shape)) {
      if (k in out) out[k] = mapSecrets(sub, out[k], replace, `${path}.${k}`);
    }
    return out;
  }
  if (def.type === 'array' && def.element && Array.isArray(value)) {
    return value.map((v, i) => mapSecrets(def.element as z.ZodType, v, replace, `${path}[${i}]`));
  }
  if (def.type === 'record' && def.valueType && value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        mapSecrets(def.valueType as z.ZodType, v, replace, `${path}.${k}`),
      ]),
    );
  }
  return value;
};

/** `value` with its secret fields replaced by `[redacted]`: for logs, read models and replies. */
export const redact = (schema: z.ZodType, value: unknown): unknown =>
  mapSecrets(schema, value, () => REDACTED);
