import { newNode, replaceNode, type FilterKind, type FilterNode } from '../../../lib/filters';
import { COMPARE_OPS } from '../../../api/types';
import { Field } from '../../../components/Field';

const KIND_LABELS: Record<FilterKind, string> = {
  field: 'Field compares',
  regex: 'Text matches regex',
  all: 'All of',
  any: 'Any of',
  not: 'Not',
};
const KINDS = Object.keys(KIND_LABELS) as FilterKind[];

/**
 * Edits one stage's filter tree. `path` is the form key of this node (`stages.0.filter`,
 * `stages.0.filter.filters.1`, …), the same keys the api's error pointers map to.
 */
export function FilterBuilder({
  root,
  path,
  errors,
  onChange,
}: {
  root: FilterNode | null;
  path: string;
  errors: Record<string, string>;
  onChange: (next: FilterNode | null) => void;
}) {
  if (!root) {
    return (
      <div className="row">
        <span className="muted">No filter: every image goes on to the next stage.</span>
        <button type="button" onClick={() => onChange(newNode('field'))}>
          Add a filter
        </button>
      </div>
    );
  }
  const update = (id: string, next: FilterNode | null) => onChange(replaceNode(root, id, next));
  return (
    <div>
      <NodeEditor node={root} path={path} errors={errors} update={update} isRoot />
    </div>
  );
}

function NodeEditor({
  node,
  path,
  errors,
  update,
  isRoot,
}: {
  node: FilterNode;
  path: string;
  errors: Record<string, string>;
  update: (id: string, next: FilterNode | null) => void;
  isRoot?: boolean;
}) {
  const group = node.kind === 'all' || node.kind === 'any' || node.kind === 'not';
  const changeKind = (kind: FilterKind) => {
    if (kind === node.kind) return;
    // Wrapping keeps what was there: turning a condition into a group puts it inside.
    if ((kind === 'all' || kind === 'any') && !group) update(node.id, { id: `${node.id}g`, kind, children: [node] });
    else if (kind === 'not' && !group) update(node.id, { id: `${node.id}n`, kind, child: node });
    else if ((kind === 'all' || kind === 'any') && (node.kind === 'all' || node.kind === 'any')) update(node.id, { ...node, kind });
    else update(node.id, newNode(kind));
  };
  return (
    <div className={group ? 'filter-node group' : 'filter-node'} role="group" aria-label={isRoot ? 'Filter' : KIND_LABELS[node.kind]}>
      <div className="row">
        <Field label={isRoot ? 'Filter type' : 'Condition type'}>
          <select value={node.kind} onChange={(e) => changeKind(e.target.value as FilterKind)}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {KIND_LABELS[k]}
              </option>
            ))}
          </select>
        </Field>
        <button type="button" className="link" onClick={() => update(node.id, null)} style={{ alignSelf: 'flex-end', marginBottom: '0.5rem' }}>
          {isRoot ? 'Remove filter' : 'Remove condition'}
        </button>
      </div>
      {errors[path] && <span className="field-error">{errors[path]}</span>}
      {node.kind === 'field' && (
        <div className="fields">
          <Field label="JSON pointer" error={errors[`${path}.pointer`]} hint="e.g. /animal or /boxes/0/score">
            <input value={node.pointer} onChange={(e) => update(node.id, { ...node, pointer: e.target.value })} className="mono" />
          </Field>
          <Field label="Comparison" error={errors[`${path}.op`]}>
            <select value={node.op} onChange={(e) => update(node.id, { ...node, op: e.target.value as typeof node.op })}>
              {COMPARE_OPS.map((op) => (
                <option key={op} value={op}>
                  {op}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Value" error={errors[`${path}.value`]} hint={node.op === 'in' ? 'a JSON list, or values separated by commas' : 'JSON (true, 3, "text") or plain text'}>
            <input value={node.value} onChange={(e) => update(node.id, { ...node, value: e.target.value })} className="mono" />
          </Field>
        </div>
      )}
      {node.kind === 'regex' && (
        <Field label="Regular expression" error={errors[`${path}.pattern`]} hint="Rust regex syntax; (?i) for case-insensitive">
          <input value={node.pattern} onChange={(e) => update(node.id, { ...node, pattern: e.target.value })} className="mono" />
        </Field>
      )}
      {(node.kind === 'all' || node.kind === 'any') && (
        <>
          {errors[`${path}.filters`] && <span className="field-error">{errors[`${path}.filters`]}</span>}
          {node.children.map((c, i) => (
            <NodeEditor key={c.id} node={c} path={`${path}.filters.${i}`} errors={errors} update={update} />
          ))}
          <div>
            <button type="button" onClick={() => update(node.id, { ...node, children: [...node.children, newNode('field')] })} disabled={node.children.length >= 20}>
              Add condition
            </button>
          </div>
        </>
      )}
      {node.kind === 'not' && <NodeEditor node={node.child} path={`${path}.filter`} errors={errors} update={update} />}
    </div>
  );
}
