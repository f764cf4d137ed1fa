import { Validator, type Schema } from '@cfworker/json-schema';
import {
  ErrorSchemaBuilder,
  type CustomValidator,
  type ErrorTransformer,
  type RJSFSchema,
  type RJSFValidationError,
  type ValidationData,
  type ValidatorType,
} from '@rjsf/utils';

/**
 * The generated forms' validator: react-jsonschema-form over @cfworker/json-schema, which
 * interprets JSON Schema without generating code. Ajv (rjsf's usual validator) compiles schemas
 * with `new Function`, which the dashboard's Content-Security-Policy forbids (no `unsafe-eval`).
 * The director checks every call again; this only tells the user earlier.
 */

const DRAFT = '2020-12';

/** Keywords whose errors sum up their children's. */
const SUMMARIES = new Set([
  'properties',
  'additionalProperties',
  'patternProperties',
  'items',
  'prefixItems',
  'contains',
  '$ref',
  'allOf',
]);

/** `#/a/0/b` -> `.a.0.b` (rjsf's property paths), `#` -> ``. */
const property = (instanceLocation: string): string =>
  instanceLocation
    .replace(/^#/, '')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => `.${s.replaceAll('~1', '/').replaceAll('~0', '~')}`)
    .join('');

const errorsOf = (schema: RJSFSchema, data: unknown): RJSFValidationError[] => {
  const r = new Validator(schema as Schema, DRAFT, false).validate(data);
  // a parent's "property x does not match" only repeats what its children say
  const leaves = r.errors.filter(
    (e) =>
      !SUMMARIES.has(e.keyword) ||
      !r.errors.some((o) => o !== e && o.instanceLocation.startsWith(`${e.instanceLocation}/`)),
  );
  return leaves.map((e) => {
    const p = property(e.instanceLocation);
    return { name: e.keyword, property: p, message: e.error, stack: `${p || 'the form'}: ${e.error}` };
  });
};

export const formValidator: ValidatorType = {
  validateFormData<T>(
    formData: T | undefined,
    schema: RJSFSchema,
    // the dashboard's forms have no custom checks: the director's are the ones that count
    _customValidate?: CustomValidator<T>,
    transformErrors?: ErrorTransformer<T>,
  ): ValidationData<T> {
    let errors = errorsOf(schema, formData ?? {});
    if (transformErrors) errors = transformErrors(errors);
    const builder = new ErrorSchemaBuilder<T>();
    for (const e of errors)
      builder.addErrors(e.message ?? e.stack, e.property ? e.property.slice(1).split('.') : undefined);
    return { errors, errorSchema: builder.ErrorSchema };
  },
  isValid(schema: RJSFSchema, formData: unknown, rootSchema: RJSFSchema): boolean {
    const { $defs, definitions } = rootSchema as { $defs?: unknown; definitions?: unknown };
    return (
      errorsOf(
        { ...schema, ...($defs ? { $defs } : {}), ...(definitions ? { definitions } : {}) } as RJSFSchema,
        formData,
      ).length === 0
    );
  },
  rawValidation<Result>(
    schema: RJSFSchema,
    formData?: unknown,
  ): { errors?: Result[]; validationError?: Error } {
    try {
      const errors = errorsOf(schema, formData);
      return errors.length ? { errors: errors as Result[] } : {};
    } catch (e) {
      return { validationError: e as Error };
    }
  },
};
