//! Cohere's chat API (`POST /v2/chat`, operation `chatv2` of Cohere's OpenAPI in
//! `shared/cohere/`) for image analysis: typed request and response bodies, a client, and
//! errors classified as DESIGN.md "Failure handling" requires.
//!
//! ```no_run
//! # async fn example(image: &[u8]) -> Result<(), cohere::CohereError> {
//! use std::time::Duration;
//! use cohere::{ChatRequest, CohereClient, ContentPart, Detail, ImageUrl, Message};
//!
//! let client = CohereClient::new(
//!     cohere::DEFAULT_BASE_URL,
//!     secrecy::SecretString::from("the key"),
//!     Duration::from_secs(60),
//! )?;
//! let request = ChatRequest::new(
//!     "command-a-vision-07-2025",
//!     vec![Message::user(vec![
//!         ContentPart::text("Describe this image"),
//!         ContentPart::image(ImageUrl::data_uri("image/png", image, Some(Detail::Low))),
//!     ])],
//! );
//! match client.chat(&request).await {
//!     Ok(response) => println!("{}", response.text()),
//!     Err(error) => println!("{:?}: {error}, retry after {:?}", error.class(), error.retry_after()),
//! }
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod error;
pub mod types;

pub use client::{CohereClient, DEFAULT_BASE_URL};
pub use error::{CohereError, classify_status};
pub use types::{
    AssistantMessage, BilledUnits, ChatRequest, ChatResponse, ContentPart, Detail,
    EncodedChatRequest, FinishReason, ImageUrl, Message, ResponseContent, ResponseFormat, Tokens,
    Usage,
};
