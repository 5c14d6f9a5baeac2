//! Pure types and rules shared by every part of the system.
//!
//! No I/O and no async here: the pipeline, stage and filter model (with validation and filter
//! evaluation), the stage message contract, job and item statuses, error classes, image
//! media types, and the arithmetic of estimates (Cohere's image-token
//! rule, shares, ETAs). Everything a caller usually needs is re-exported at the crate root.
//!
//! The `sea-orm` feature (enabled by `store`) only adds database column mappings for the
//! named enums, so entities hold them directly; it does no I/O.

mod names;

pub mod estimate;
pub mod event;
pub mod filter;
pub mod job;
pub mod media;
pub mod message;
pub mod pipeline;
pub mod selection;
pub mod validation;

pub use filter::{
    CompareOp, CompiledFilter, Filter, FilterError, FilterVerdict, StageOutput, parse_json_output,
};
pub use job::{
    DeadLetterStatus, ErrorClass, ItemStatus, JobStatus, MAX_AMQP_PRIORITY, ParseEnumError,
    Priority, Verdict,
};
pub use media::{MAX_IMAGE_BYTES, MediaError, MediaType, sniff};
pub use message::{DecodeError, STAGE_MESSAGE_KIND, STAGE_MESSAGE_VERSION, StageMessage};
pub use pipeline::{
    DEFAULT_MODEL, ImageDetail, MAX_STAGES, PipelineSnapshot, PipelineSpec, StageSpec,
};
pub use selection::{
    IdList, IdListError, IdListProblem, ImageSelection, MAX_IMAGES_PER_JOB,
    MAX_LIBRARY_IMAGES_PER_JOB,
};
pub use validation::{FieldError, MAX_NAME_LEN, Name, ValidationErrors, validate_name};
