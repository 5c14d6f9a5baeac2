// Type-checked (tsc --noEmit) against the types openapi-typescript generates from both
// documents into generated/typescript/: if a document stops describing these calls, this fails.
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/typescript/api";
import type { paths as RedriverPaths } from "../generated/typescript/redriver";

type Filter = components["schemas"]["Filter"];
type JobEvent = components["schemas"]["JobEvent"];
type Problem = components["schemas"]["Problem"];

const api = createClient<paths>({
  baseUrl: "http://127.0.0.1:8080",
  headers: { Authorization: "Bearer ipk_example" },
});

// A filter nesting all/any/not with field and regex checks.
const animalsButNoDogs: Filter = {
  type: "all",
  filters: [
    {
      type: "any",
      filters: [
        { type: "field", pointer: "/animal", op: "eq", value: true },
        { type: "regex", pattern: "(?i)\\bhorse\\b" },
      ],
    },
    { type: "not", filter: { type: "field", pointer: "/label", op: "eq", value: "dog" } },
  ],
};

// @ts-expect-error a field check needs its `op` and `value`
const incomplete: Filter = { type: "field", pointer: "/animal" };

/** Narrows an event by its `type`, as the discriminator says. */
export function describe(event: JobEvent): string {
  switch (event.type) {
    case "created":
      return `job created with ${event.counts.total} items (seq ${event.seq})`;
    case "progress":
      return `${event.items.length} items moved; ${event.counts.passed} passed (seq ${event.seq})`;
    case "cancel_requested":
      return `cancel requested at seq ${event.seq}`;
  }
}

export function fieldPointers(problem: Problem): string[] {
  return (problem.errors ?? []).map((error) => error.path);
}

export async function createAndSubmit(libraryId: string): Promise<string> {
  const created = await api.POST("/api/pipelines", {
    body: {
      name: "Animal survey",
      stages: [
        {
          name: "detect",
          prompt: "Is there an animal in this image?",
          json_schema: {
            type: "object",
            properties: { animal: { type: "boolean" }, label: { type: "string" } },
            required: ["animal", "label"],
          },
          filter: animalsButNoDogs,
        },
        { name: "describe", prompt: "Describe the animal.", image_detail: "high", max_tokens: 300 },
      ],
    },
  });
  if (created.error) {
    throw new Error(fieldPointers(created.error).join(", "));
  }
  const pipeline = created.data;
  const stageFilter: Filter | null | undefined = pipeline.stages[0]?.filter;
  void stageFilter;
  const estimate = await api.POST("/api/jobs/estimate", {
    body: { pipeline_id: pipeline.id, library_id: libraryId, priority: "high" },
  });
  if (!estimate.data) {
    throw new Error(estimate.error.detail);
  }
  const { cost_usd: cost, eta_seconds: eta }: { cost_usd: { low: number; high: number }; eta_seconds: number } =
    estimate.data;
  void [cost, eta];
  const submitted = await api.POST("/api/jobs/submit", {
    params: { header: { "Idempotency-Key": "survey-1" } },
    body: { pipeline_id: pipeline.id, library_id: libraryId, priority: "high" },
  });
  if (!submitted.data) {
    throw new Error(submitted.error.detail);
  }
  const results = await api.GET("/api/jobs/{job_id}/results", {
    params: { path: { job_id: submitted.data.id }, query: { stage: 0, verdict: "passed" } },
  });
  return (results.data?.items ?? []).map((result) => result.output_text).join("\n");
}

const redriver = createClient<RedriverPaths>({ baseUrl: "http://127.0.0.1:8090" });

export async function openDeadLetters(token: string): Promise<number> {
  const page = await redriver.GET("/admin/dead-letters", {
    params: { query: { status: "open", limit: 50 } },
    headers: { Authorization: `Bearer ${token}` },
  });
  return page.data?.total ?? 0;
}

void incomplete;
