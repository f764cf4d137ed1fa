// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/** The apps of the tree (processes and the CLI): nothing imports them. */
const APPS = ['@cps/director', '@cps/manager-runtime', '@cps/agent-runtime', '@cps/cli'];
/** The import boundaries of docs/architecture.md, for every file of the tree. */
const BOUNDARIES = [
  { group: ['@cps/*/*'], message: 'Import a lib through its front door (@cps/<lib>), never its files.' },
  {
    group: APPS,
    message: 'No app or lib imports an app: what two apps share lives in a lib (docs/architecture.md).',
  },
];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'bench/**/*.mjs',
      '**/bin/*.js',
      'eslint.config.js',
      '**/*.gen.ts',
      'libs/sdk/scripts/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ conditionNames: ['@cps/source', 'types', 'import', 'default'] }),
      ],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'no-restricted-imports': [
        'error',
        {
          patterns: BOUNDARIES,
        },
      ],
    },
  },
  {
    // deciders are pure: time and ids arrive in command metadata; every decider of the tree is listed here
    files: [
      '{apps,libs}/*/src/**/*-decider.ts',
      'libs/services/src/aggregate/decider.ts',
      'apps/director/src/core/name-claims.ts',
      'apps/director/src/operations/operation-events.ts',
    ],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
          message: 'use command.metadata.now',
        },
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'use command.metadata.now',
        },
        { selector: "CallExpression[callee.name='randomUUID']", message: 'ids arrive in command metadata' },
        { selector: "CallExpression[callee.name='randomBytes']", message: 'ids arrive in command metadata' },
        {
          selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']",
          message: 'ids arrive in command metadata',
        },
      ],
    },
  },
  {
    // an agent talks to its manager only: it never reads or writes the event store
    files: ['apps/agent-runtime/src/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/*.spec-helpers.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@cps/events', message: 'agents never touch the event store' }],
          patterns: BOUNDARIES,
        },
      ],
    },
  },
  {
    // tests read answers field by field: an answer typed `any` is fine there
    files: ['**/*.spec.ts', '**/*.spec-helpers.ts', 'libs/testing/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
