//! Request and response bodies of `POST /v2/chat` (operation `chatv2` in Cohere's OpenAPI),
//! limited to what a non-streaming, tool-free call with images needs.
//!
//! Requests serialize exactly to the spec's shapes, leaving out unset optional fields.
//! Responses ignore fields this crate does not model, and unknown `finish_reason` values or
//! content-part types decode to an `Other` variant instead of failing.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The body of `POST /v2/chat` (never streamed: `stream` is left out, which means `false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// A Cohere model name; images need a vision model such as `command-a-vision-07-2025`.
    pub model: String,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Forces plain text or a JSON object (optionally matching a schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Randomness, 0 to 1; Cohere's default is 0.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Cap on output tokens; Cohere's default is the model's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    /// The JSON body. Drop the request afterwards to free its (possibly large) image data
    /// while the call runs.
    pub fn encode(&self) -> Result<EncodedChatRequest, serde_json::Error> {
        // The body is about as long as its strings; sizing it up front avoids regrowing (and
        // copying) a buffer of several megabytes.
        let strings: usize = self
            .messages
            .iter()
            .map(|message| match message {
                Message::System { content } => content.len(),
                Message::User { content } => content
                    .iter()
                    .map(|part| match part {
                        ContentPart::Text { text } => text.len(),
                        ContentPart::ImageUrl { image_url } => image_url.url.len(),
                    })
                    .sum(),
            })
            .sum();
        let mut body = Vec::with_capacity(strings + strings / 16 + 1024);
        serde_json::to_writer(&mut body, self)?;
        Ok(EncodedChatRequest {
            model: self.model.clone(),
            body: body.into(),
        })
    }

    /// A request with only the required fields set.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            response_format: None,
            temperature: None,
            max_tokens: None,
        }
    }
}

/// A [`ChatRequest`] serialized, ready to send (see [`crate::CohereClient::send`]).
#[derive(Clone)]
pub struct EncodedChatRequest {
    /// The request's model, for logs.
    pub model: String,
    /// The JSON body.
    pub body: bytes::Bytes,
}

impl std::fmt::Debug for EncodedChatRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedChatRequest")
            .field("model", &self.model)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// One message of the conversation (`ChatMessageV2`), tagged by `role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// Instructions for the model (`SystemMessageV2` with string content).
    System {
        /// The instructions.
        content: String,
    },
    /// The user's turn (`UserMessageV2` with a list of content parts).
    User {
        /// Text and image parts, in order.
        content: Vec<ContentPart>,
    },
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::System {
            content: content.into(),
        }
    }

    /// A user message made of `content` parts.
    pub fn user(content: Vec<ContentPart>) -> Self {
        Self::User { content }
    }
}

/// One part of a user message (`Content`), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// `{"type": "text", "text": ...}`
    Text {
        /// The text.
        text: String,
    },
    /// `{"type": "image_url", "image_url": {...}}`
    ImageUrl {
        /// Where the image is (a web URL or a data URI) and how closely to look at it.
        image_url: ImageUrl,
    },
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// An image part.
    pub fn image(image_url: ImageUrl) -> Self {
        Self::ImageUrl { image_url }
    }
}

/// An image reference (`ImageUrl`).
///
/// Cohere accepts PNG, JPEG, WEBP and non-animated GIF, at most 20 images or 20 MB per request.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// An `https` URL Cohere can fetch, or a `data:<media type>;base64,<data>` URI.
    pub url: String,
    /// Level of detail; Cohere's default is `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

impl ImageUrl {
    /// Embeds `bytes` as `data:<media_type>;base64,<standard base64 with padding>`.
    ///
    /// `media_type` is used as given (e.g. `image/png`); checking that it matches the bytes and
    /// is a type Cohere accepts is the caller's job.
    pub fn data_uri(media_type: &str, bytes: &[u8], detail: Option<Detail>) -> Self {
        let prefix = format!("data:{media_type};base64,");
        let encoded_len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
        // One allocation of the final size: images are large, and copies add up per call.
        let mut url = String::with_capacity(prefix.len() + encoded_len);
        url.push_str(&prefix);
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut url);
        Self { url, detail }
    }
}

impl std::fmt::Debug for ImageUrl {
    /// Data URIs can be megabytes long: show only their head and length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 64;
        let mut url = f.debug_struct("ImageUrl");
        if self.url.len() > SHOWN {
            let end = (0..=SHOWN)
                .rev()
                .find(|&i| self.url.is_char_boundary(i))
                .unwrap_or(0);
            url.field(
                "url",
                &format_args!("{:?}... ({} bytes)", &self.url[..end], self.url.len()),
            );
        } else {
            url.field("url", &self.url);
        }
        url.field("detail", &self.detail).finish()
    }
}

/// How closely the model looks at an image: `low` is faster and uses fewer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    /// Cohere chooses (the default).
    Auto,
    /// Faster, fewer tokens, less detail.
    Low,
    /// Maximum detail.
    High,
}

impl From<domain::ImageDetail> for Detail {
    fn from(detail: domain::ImageDetail) -> Self {
        match detail {
            domain::ImageDetail::Auto => Self::Auto,
            domain::ImageDetail::Low => Self::Low,
            domain::ImageDetail::High => Self::High,
        }
    }
}

/// The output format (`ResponseFormatV2`), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// A JSON object, matching `json_schema` when one is given. The messages must still ask for
    /// JSON explicitly, or the model may generate until it runs out of tokens.
    JsonObject {
        /// A JSON Schema the output adheres to (within Cohere's schema restrictions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        json_schema: Option<Value>,
    },
}

/// A non-streamed answer (`ChatResponseV2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Cohere's identifier of this generation.
    pub id: String,
    /// Why generation stopped; anything but [`FinishReason::Complete`] may mean the text is
    /// truncated or missing.
    pub finish_reason: FinishReason,
    /// The generated message.
    pub message: AssistantMessage,
    /// Token counts, when Cohere reports them.
    #[serde(default)]
    pub usage: Option<Usage>,
}

impl ChatResponse {
    /// The text parts of the message, concatenated (thinking and unknown parts are skipped).
    pub fn text(&self) -> String {
        self.message.text()
    }
}

/// Why generation stopped (`ChatFinishReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FinishReason {
    /// The model finished its message.
    Complete,
    /// A stop sequence was generated.
    StopSequence,
    /// `max_tokens` or the context length was reached: the output is truncated.
    MaxTokens,
    /// The model asked for a tool call.
    ToolCall,
    /// Generation failed inside Cohere.
    Error,
    /// Generation exceeded Cohere's time limit.
    Timeout,
    /// A value this crate does not know yet.
    #[serde(other)]
    Other,
}

/// The assistant's message (`AssistantMessageResponse`); tool calls and citations are ignored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// The content parts, in order (absent or `null` reads as empty).
    #[serde(default, deserialize_with = "null_as_default")]
    pub content: Vec<ResponseContent>,
}

impl AssistantMessage {
    /// The text parts, concatenated.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                ResponseContent::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One part of the assistant's message, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseContent {
    /// Generated text.
    Text {
        /// The text.
        text: String,
    },
    /// The model's reasoning, when thinking is enabled.
    Thinking {
        /// The reasoning.
        thinking: String,
    },
    /// A part type this crate does not know yet.
    #[serde(other)]
    Other,
}

/// Token accounting (`Usage`). The spec types every count as a JSON number, so they are `f64`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// What is billed.
    #[serde(default)]
    pub billed_units: Option<BilledUnits>,
    /// What the model actually consumed and produced (includes prompt template tokens).
    #[serde(default)]
    pub tokens: Option<Tokens>,
    /// Prompt tokens served from Cohere's inference cache.
    #[serde(default)]
    pub cached_tokens: Option<f64>,
}

/// Billed tokens (`UsageBilledUnits`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BilledUnits {
    /// Billed input tokens.
    #[serde(default)]
    pub input_tokens: Option<f64>,
    /// Billed output tokens.
    #[serde(default)]
    pub output_tokens: Option<f64>,
}

/// Tokens the model consumed and produced (`UsageTokens`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tokens {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: Option<f64>,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: Option<f64>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
