import type { Issue } from '@cps/core';

/**
 * How deep a JSON value the API takes may nest (objects and arrays, the outermost one being level
 * 1). Deeper values are refused before anything walks them, so no check or handler recurses out of
 * its stack.
 */
export const MAX_JSON_DEPTH = 32;

type Pending = { readonly value: object; readonly path: string; readonly depth: number };

/**
 * The issue of a value nested deeper than `max` levels, at the path of its first object or array
 * beyond them (in document order); undefined when it is shallow enough. Iterative: any depth.
 */
export const tooDeep = (value: unknown, max = MAX_JSON_DEPTH): Issue | undefined => {
  if (value === null || typeof value !== 'object') return undefined;
  const todo: Pending[] = [{ value, path: '$', depth: 1 }];
  for (let next = todo.pop(); next; next = todo.pop()) {
    if (next.depth > max)
      return { path: next.path, code: 'too_deep', message: `nested deeper than ${max} levels` };
    const children: Pending[] = [];
    const add = (v: unknown, path: string) => {
      if (v !== null && typeof v === 'object') children.push({ value: v, path, depth: next.depth + 1 });
    };
    if (Array.isArray(next.value)) next.value.forEach((v, i) => add(v, `${next.path}[${i}]`));
    else for (const [k, v] of Object.entries(next.value)) add(v, `${next.path}.${k}`);
    for (let i = children.length - 1; i >= 0; i--) todo.push(children[i] as Pending);
  }
  return undefined;
};
