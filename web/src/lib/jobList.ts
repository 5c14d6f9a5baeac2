import { JOB_HISTORY_SORTS, type JobHistorySort, type StageProgress } from '../api/types';
import { num } from './format';

/** The history's order when the URL names none: newest first. */
export const DEFAULT_SORT: JobHistorySort = '-created_at';

/** The sort a `?sort=` value names; anything unknown falls back to the default. */
export function parseSort(raw: string): JobHistorySort {
  return (JOB_HISTORY_SORTS as readonly string[]).includes(raw) ? (raw as JobHistorySort) : DEFAULT_SORT;
}

/** A sortable column: the field it sorts by, and whether it can also sort descending. */
export type SortColumn = 'created_at' | 'finished_at' | 'status';

/** The sort after clicking a column's header: descending first (newest), then ascending. */
export function nextSort(current: JobHistorySort, column: SortColumn): JobHistorySort {
  if (column === 'status') return 'status';
  return current === `-${column}` ? column : `-${column}`;
}

/** `aria-sort` of a column's header under the current sort. */
export function ariaSort(current: JobHistorySort, column: SortColumn): 'ascending' | 'descending' | 'none' {
  if (current === column) return 'ascending';
  if (current === `-${column}`) return 'descending';
  return 'none';
}

/** Per-stage counts in a line: "detect 12→2 · describe 2→2", with failures when there are any. */
export function stageSummary(stages: readonly StageProgress[]): string {
  return stages
    .map((s) => `${s.name} ${num(s.processed)}→${num(s.passed)}${s.failed > 0 ? ` (${num(s.failed)} failed)` : ''}`)
    .join(' · ');
}
