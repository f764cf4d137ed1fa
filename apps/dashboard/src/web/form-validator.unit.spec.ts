import { describe, expect, it } from 'vitest';
import type { RJSFSchema } from '@rjsf/utils';
import { formValidator } from './form-validator.js';

const schema: RJSFSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1 },
    weights: { type: 'object', additionalProperties: { type: 'integer', minimum: 1, maximum: 100 } },
    parameters: { type: 'array', items: { type: 'string' }, maxItems: 2 },
  },
  required: ['name'],
  additionalProperties: false,
};

describe('the generated forms’ validator (JSON Schema without code generation)', () => {
  it('accepts what the schema accepts', () => {
    const r = formValidator.validateFormData({ name: 'a', weights: { n1: 5 }, parameters: ['x'] }, schema);
    expect(r.errors).toEqual([]);
    expect(formValidator.isValid(schema, { name: 'a' }, schema)).toBe(true);
  });

  it('names each offending field by its path, once, with the schema’s reason', () => {
    const r = formValidator.validateFormData({ weights: { n1: 500 }, parameters: ['a', 'b', 'c'] }, schema);
    expect(r.errors.map((e) => [e.property, e.name])).toEqual(
      expect.arrayContaining([
        ['', 'required'],
        ['.weights.n1', 'maximum'],
        ['.parameters', 'maxItems'],
      ]),
    );
    // a parent's summary ("properties do not match") is left out when a child says why
    expect(r.errors.some((e) => e.property === '.weights')).toBe(false);
    expect(r.errorSchema).toMatchObject({
      weights: { n1: { __errors: [expect.stringMatching(/100/)] } },
      parameters: { __errors: [expect.any(String)] },
    });
    expect(formValidator.isValid(schema, { name: 'a', extra: 1 }, schema)).toBe(false);
  });

  it('resolves references to the root schema’s definitions', () => {
    const root: RJSFSchema = { $defs: { port: { type: 'integer', maximum: 65535 } } };
    expect(formValidator.isValid({ $ref: '#/$defs/port' }, 80, root)).toBe(true);
    expect(formValidator.isValid({ $ref: '#/$defs/port' }, 70000, root)).toBe(false);
  });
});
