// Short names for the generated API types; the rest of the app imports from here only.
import type { components, operations } from './schema';

type S = components['schemas'];
export type Problem = S['Problem'];
export type FieldError = S['FieldError'];
export type Library = S['Library'];
export type Image = S['Image'];
export type Pipeline = S['Pipeline'];
export type PipelineDefinition = S['PipelineDefinition'];
export type StageSpec = S['StageSpec'];
export type Filter = S['Filter'];
export type CompareOp = S['CompareOp'];
export type ImageDetail = S['ImageDetail'];
export type Job = S['Job'];
export type JobSummary = S['JobSummary'];
export type JobStatus = S['JobStatus'];
export type JobCounts = S['JobCounts'];
export type JobEvent = S['JobEvent'];
export type JobResult = S['JobResult'];
export type StageProgress = S['StageProgress'];
export type Priority = S['Priority'];
export type Verdict = S['Verdict'];
export type ItemStatus = S['ItemStatus'];
export type Readiness = S['Readiness'];
export type SubmitJob = S['SubmitJob'];
export type JobEstimate = S['JobEstimate'];
export type Session = S['Session'];
export type JobItem = S['JobItem'];
export type JobItemDetail = S['JobItemDetail'];
export type ItemStage = S['ItemStage'];
export type JobErrorGroup = S['JobErrorGroup'];
export type BulkResults = S['BulkResults'];
export type JobSnapshot = S['JobSnapshot'];
export type SystemHealth = S['SystemHealth'];
export type PreviewJob = S['PreviewJob'];
export type JobHistorySort = NonNullable<NonNullable<operations['job_history']['parameters']['query']>['sort']>;

export const JOB_STATUSES: readonly JobStatus[] = [
  'queued',
  'running',
  'completed',
  'completed_with_errors',
  'failed',
  'cancelled',
];
export const JOB_HISTORY_SORTS: readonly JobHistorySort[] = ['created_at', '-created_at', 'finished_at', '-finished_at', 'status'];
export const PRIORITIES: readonly Priority[] = ['low', 'normal', 'high'];
export const IMAGE_DETAILS: readonly ImageDetail[] = ['auto', 'low', 'high'];
export const COMPARE_OPS: readonly CompareOp[] = ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte', 'contains'];

export function isTerminal(status: JobStatus): boolean {
  return status !== 'queued' && status !== 'running';
}
