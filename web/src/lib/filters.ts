import type { CompareOp, Filter } from '../api/types';

/**
 * The filter builder's editable tree: the API's `Filter` with a stable id per node (for React
 * keys) and the comparison value kept as the text the user typed until it is sent.
 */
export type FilterNode =
  | { id: string; kind: 'field'; pointer: string; op: CompareOp; value: string }
  | { id: string; kind: 'regex'; pattern: string }
  | { id: string; kind: 'all' | 'any'; children: FilterNode[] }
  | { id: string; kind: 'not'; child: FilterNode };

export type FilterKind = FilterNode['kind'];

let counter = 0;
export function nodeId(): string {
  counter += 1;
  return `f${counter}`;
}

export function newNode(kind: FilterKind): FilterNode {
  switch (kind) {
    case 'field':
      return { id: nodeId(), kind, pointer: '/', op: 'eq', value: '' };
    case 'regex':
      return { id: nodeId(), kind, pattern: '' };
    case 'all':
    case 'any':
      return { id: nodeId(), kind, children: [newNode('field')] };
    case 'not':
      return { id: nodeId(), kind, child: newNode('field') };
  }
}

/** Reads a typed value: JSON when it parses (`true`, `3`, `"x"`, `["a","b"]`), else the text itself. */
export function parseValue(text: string, op: CompareOp): unknown {
  const t = text.trim();
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    v = t;
  }
  if (op === 'in' && !Array.isArray(v)) {
    // `cat, lion` is a list of two strings
    return t === '' ? [] : t.split(',').map((s) => parseValue(s, 'eq'));
  }
  return v;
}

/** The text that reads back as `value` through `parseValue`. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') {
    let reparsed: unknown;
    try {
      reparsed = JSON.parse(value);
    } catch {
      return value.includes(',') ? JSON.stringify(value) : value;
    }
    // "true" or "3" as strings must keep their quotes to stay strings
    return typeof reparsed === 'string' ? value : JSON.stringify(value);
  }
  return JSON.stringify(value);
}

export function fromApi(filter: Filter): FilterNode {
  switch (filter.type) {
    case 'field':
      return { id: nodeId(), kind: 'field', pointer: filter.pointer, op: filter.op, value: formatValue(filter.value) };
    case 'regex':
      return { id: nodeId(), kind: 'regex', pattern: filter.pattern };
    case 'all':
    case 'any':
      return { id: nodeId(), kind: filter.type, children: filter.filters.map(fromApi) };
    case 'not':
      return { id: nodeId(), kind: 'not', child: fromApi(filter.filter) };
  }
}

export function toApi(node: FilterNode): Filter {
  switch (node.kind) {
    case 'field':
      return { type: 'field', pointer: node.pointer, op: node.op, value: parseValue(node.value, node.op) };
    case 'regex':
      return { type: 'regex', pattern: node.pattern };
    case 'all':
    case 'any':
      return { type: node.kind, filters: node.children.map(toApi) };
    case 'not':
      return { type: 'not', filter: toApi(node.child) };
  }
}

/**
 * Errors the browser can see before sending, keyed like the API's pointers
 * (`<base>.filters.0.pattern`), so client and server errors show in the same place.
 */
export function checkFilter(node: FilterNode, base: string, out: Record<string, string> = {}): Record<string, string> {
  switch (node.kind) {
    case 'field':
      if (node.pointer !== '' && !node.pointer.startsWith('/')) out[`${base}.pointer`] = 'a JSON pointer starts with "/" (or is empty for the whole answer)';
      if (node.op === 'in' && !Array.isArray(parseValue(node.value, 'in'))) out[`${base}.value`] = 'a list is needed';
      break;
    case 'regex':
      if (node.pattern === '') out[`${base}.pattern`] = 'must not be empty';
      break;
    case 'all':
    case 'any':
      if (node.children.length === 0) out[`${base}.filters`] = 'needs at least one condition';
      if (node.children.length > 20) out[`${base}.filters`] = 'at most 20 conditions';
      node.children.forEach((c, i) => checkFilter(c, `${base}.filters.${i}`, out));
      break;
    case 'not':
      checkFilter(node.child, `${base}.filter`, out);
      break;
  }
  return out;
}

/** Replaces the node with `id` anywhere in the tree (`null` removes it from its group). */
export function replaceNode(root: FilterNode, id: string, next: FilterNode | null): FilterNode | null {
  if (root.id === id) return next;
  switch (root.kind) {
    case 'all':
    case 'any': {
      const children = root.children
        .map((c) => replaceNode(c, id, next))
        .filter((c): c is FilterNode => c !== null);
      return { ...root, children };
    }
    case 'not': {
      const child = replaceNode(root.child, id, next);
      return child ? { ...root, child } : null;
    }
    default:
      return root;
  }
}
