import { useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';

/**
 * A virtualized grid of tiles: only the rows in view (plus a few) are in the DOM, so a
 * 10,000-image library keeps a few dozen image nodes. `loaded` may be less than `count`:
 * `onNeedMore` is called when the view reaches the end of what is loaded.
 */
export function VirtualGrid<T>({
  count,
  items,
  tile = 168,
  label,
  render,
  onNeedMore,
}: {
  count: number;
  items: readonly T[];
  tile?: number;
  label: string;
  render: (item: T, index: number) => ReactNode;
  onNeedMore?: () => void;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const columns = Math.max(2, Math.floor(width / tile) || 2);
  const size = width > 0 ? Math.floor(width / columns) : tile;
  const rows = Math.ceil(count / columns);
  const virtualizer = useVirtualizer({
    count: rows,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => size,
    overscan: 3,
  });
  useEffect(() => virtualizer.measure(), [size, virtualizer]);
  const virtualRows = virtualizer.getVirtualItems();
  const lastIndex = ((virtualRows.at(-1)?.index ?? 0) + 1) * columns;
  useEffect(() => {
    if (onNeedMore && lastIndex >= items.length && items.length < count) onNeedMore();
  }, [lastIndex, items.length, count, onNeedMore]);

  // Arrow keys, Home and End move between tiles, scrolling rows that are not rendered into view.
  const focusTile = (i: number) => {
    const target = Math.max(0, Math.min(count - 1, i));
    virtualizer.scrollToIndex(Math.floor(target / columns), { align: 'auto' });
    requestAnimationFrame(() =>
      scrollRef.current?.querySelector<HTMLElement>(`[data-index="${target}"] button, [data-index="${target}"] a`)?.focus(),
    );
  };
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const cell = (e.target as HTMLElement).closest<HTMLElement>('[data-index]');
    if (!cell) return;
    const i = Number(cell.dataset.index);
    const moves: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (e.key in moves) focusTile(i + moves[e.key]!);
    else if (e.key === 'Home') focusTile(0);
    else if (e.key === 'End') focusTile(count - 1);
    else return;
    e.preventDefault();
  };

  return (
    <div className="grid-scroll" ref={scrollRef} role="region" aria-label={label} tabIndex={0} onKeyDown={onKeyDown}>
      <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }} role="list">
        {virtualRows.flatMap((row) =>
          Array.from({ length: columns }, (_, c) => {
            const i = row.index * columns + c;
            if (i >= count) return null;
            const item = items[i];
            return (
              <div key={i} data-index={i} className="thumb" role="listitem" style={{ top: row.start, left: c * size, width: size, height: size }}>
                {item === undefined ? <div className="thumb-inner" aria-label="Loading" /> : render(item, i)}
              </div>
            );
          }),
        )}
      </div>
    </div>
  );
}
