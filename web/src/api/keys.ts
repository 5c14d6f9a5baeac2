// Every query key of the app. Keys are nested so invalidating a prefix reaches everything
// under it: `libraries.detail(id)` also covers that library's images.
export interface PageParams {
  limit: number;
  offset: number;
}

export interface HistoryParams extends PageParams {
  status?: string;
  pipeline_id?: string;
  library_id?: string;
  created_from?: string;
  created_to?: string;
  include_previews?: boolean;
  sort?: string;
}

export interface ResultParams extends PageParams {
  stage?: number;
  verdict?: string;
  image_id?: string;
}

export const keys = {
  session: () => ['session'] as const,
  health: () => ['health'] as const,
  libraries: {
    all: () => ['libraries'] as const,
    lists: () => ['libraries', 'list'] as const,
    list: (p: PageParams) => ['libraries', 'list', p] as const,
    detail: (id: string) => ['libraries', 'detail', id] as const,
    images: (id: string) => ['libraries', 'detail', id, 'images'] as const,
    imagePage: (id: string, p: PageParams) => ['libraries', 'detail', id, 'images', p] as const,
    image: (id: string, imageId: string) => ['libraries', 'detail', id, 'image', imageId] as const,
  },
  pipelines: {
    all: () => ['pipelines'] as const,
    lists: () => ['pipelines', 'list'] as const,
    list: (p: PageParams) => ['pipelines', 'list', p] as const,
    detail: (id: string) => ['pipelines', 'detail', id] as const,
  },
  jobs: {
    all: () => ['jobs'] as const,
    lists: () => ['jobs', 'list'] as const,
    list: (p: HistoryParams) => ['jobs', 'list', p] as const,
    detail: (id: string) => ['jobs', 'detail', id] as const,
    /** The job's live ETA, read apart from its detail (which the event stream keeps). */
    eta: (id: string) => ['jobs', 'detail', id, 'eta'] as const,
    estimates: () => ['jobs', 'estimate'] as const,
    estimate: (body: unknown) => ['jobs', 'estimate', body] as const,
    results: (id: string, p: Omit<ResultParams, 'limit' | 'offset'>) =>
      ['jobs', 'detail', id, 'results', p] as const,
    items: (id: string, p: { stage?: number; outcome?: string }) => ['jobs', 'detail', id, 'items', p] as const,
    item: (id: string, itemId: string) => ['jobs', 'detail', id, 'item', itemId] as const,
    errors: (id: string) => ['jobs', 'detail', id, 'errors'] as const,
  },
};
